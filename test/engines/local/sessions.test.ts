import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { ask, fileOf, type LocalStack, readAll, startLocal } from './harness.js';

/** Conversations as sessions: state across turns, restarts, isolation, the caps, the pool, reset. */

let stack: LocalStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

const told = (s: LocalStack) => s.chat.requests.at(-1)!.toolResults;

/** The sandboxes (bwrap processes) this test process has started and not yet stopped. */
async function sandboxes(): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const [, comm, ppid] = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat) ?? [];
    if (comm === 'bwrap' && Number(ppid) === process.pid) found.push(Number(entry));
  }
  return found;
}

describe('local engine sessions', () => {
  it('keeps variables and the conversation across turns', async () => {
    stack = await startLocal();
    stack.chat.script.push({ python: 'x = 41\nprint("set")' }, { text: 'Set x.' });
    const first = await ask(stack, 'set x to 41');
    stack.chat.script.push({ python: 'x + 1' }, (request) => ({ text: `x + 1 is ${request.toolResults[0]!.split('\n')[1]}.` }));
    const second = await ask(stack, 'and x + 1?', { session: first.session });

    expect(second.text).toBe('x + 1 is 42.');
    expect(second.session.contextId).toBe(first.session.contextId);
    const history = stack.chat.requests.at(-1)!.messages.map((m) => m['role']);
    expect(history).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'user', 'assistant', 'tool']);
    expect(stack.chat.requests.at(-1)!.messages[1]).toMatchObject({ role: 'user', content: 'set x to 41' });
  });

  it('stops an idle interpreter and restarts it on demand with the files still there, telling the model', async () => {
    stack = await startLocal({ idleMs: 200 });
    stack.chat.script.push({ python: "x = 1\nopen('kept.csv', 'w').write('a\\n1\\n')" }, { text: 'ok' });
    const first = await ask(stack, 'make a file', { files: [fileOf('notes.txt', 'hello')] });
    await delay(1000);
    stack.chat.script.push({ python: "import os\nprint(sorted(os.listdir('.')), 'x' in globals())" }, { text: 'ok' });
    await ask(stack, 'what is left?', { session: first.session });

    expect(stack.chat.requests.at(-2)!.userText).toBe(
      'what is left?\n\n(The Python session restarted since the last message: variables and imports are gone; the files in /mnt/data are still there.)',
    );
    expect(told(stack)).toEqual(["Output:\n['kept.csv', 'notes.txt'] False"]);
  });

  it('runs two conversations at once, each with its own variables and files', async () => {
    stack = await startLocal();
    const code = (n: number) => `import time\nx = ${n}\nopen('mine.txt', 'w').write('${n}')\ntime.sleep(0.5)\nprint(x, open('mine.txt').read(), sorted(__import__('os').listdir('.')))`;
    stack.chat.fallback = (request) =>
      request.toolResults.length > 0 ? { text: request.toolResults[0]! } : { python: code(Number(/\d+/.exec(request.userText)![0])) };
    const [a, b] = await Promise.all([ask(stack, 'conversation 1'), ask(stack, 'conversation 2')]);
    expect(a.text).toBe("Output:\n1 1 ['mine.txt']\n\nFiles created or changed: mine.txt (1 bytes).");
    expect(b.text).toBe("Output:\n2 2 ['mine.txt']\n\nFiles created or changed: mine.txt (1 bytes).");
    expect(a.session.contextId).not.toBe(b.session.contextId);
  });

  it('stops a model that keeps calling tools at the bound, and says so', async () => {
    stack = await startLocal({ maxToolRounds: 3 });
    stack.chat.fallback = { text: 'Still working.', python: 'print("again")' };
    const result = await ask(stack, 'loop forever');
    expect(stack.chat.requests).toHaveLength(4);
    expect(stack.chat.requests.map((r) => r.toolChoice)).toEqual(['auto', 'auto', 'auto', 'none']);
    expect(result.code).toHaveLength(3);
    expect(result.text).toMatch(/I stopped after 3 Python runs, the most I make for one question/);
    // The history stays valid for the API: the call it did not run was answered "not run".
    stack.chat.script.push({ text: 'fine' });
    await ask(stack, 'ok', { session: result.session });
    expect(stack.chat.requests.at(-1)!.messages.at(-2)).toMatchObject({ role: 'tool', content: expect.stringMatching(/^Not run: 3 Python runs/) });
  });

  it('waits for a free interpreter when all are busy, then makes room by stopping an idle one', async () => {
    stack = await startLocal({ maxSessions: 1 });
    stack.chat.fallback = (request) => (request.toolResults.length > 0 ? { text: 'done' } : { python: 'import time\ntime.sleep(1)\nprint("ran")' });
    const [a, b] = await Promise.all([ask(stack, 'first'), ask(stack, 'second')]);
    const waited = [a, b].filter((r) => r.progress.some((p) => p.type === 'status' && p.text === 'waiting for a free Python session…'));
    expect(waited).toHaveLength(1);
    expect([a.text, b.text]).toEqual(['done', 'done']);
    // The first conversation's interpreter was stopped to make room: coming back restarts it.
    const back = waited[0] === a ? b : a;
    await ask(stack, 'again', { session: back.session });
    expect(stack.chat.requests.at(-2)!.userText).toMatch(/The Python session restarted since the last message/);
  });

  it('adopts a warm interpreter for a new conversation and starts another in its place', async () => {
    stack = await startLocal({ poolSize: 1 });
    const sessions = join(stack.root, 'sessions');
    const folders = async () => (await readdir(sessions)).filter((name) => !name.startsWith('.'));
    await expect.poll(sandboxes, { timeout: 20_000 }).toHaveLength(1);
    const [warm] = await folders();
    const [warmSandbox] = await sandboxes();
    stack.chat.script.push({ python: 'import sys\nprint(sorted(m for m in ("numpy", "pandas", "matplotlib.pyplot") if m in sys.modules))' }, { text: 'ok' });
    const result = await ask(stack, 'hello');
    expect(result.session.contextId).toBe(warm);
    expect(told(stack)).toEqual(["Output:\n['matplotlib.pyplot', 'numpy', 'pandas']"]);
    // The conversation runs in the very sandbox that was waiting, and the pool has started one more: no other.
    await expect.poll(folders, { timeout: 20_000 }).toHaveLength(2);
    const now = await sandboxes();
    expect(now).toHaveLength(2);
    expect(now).toContain(warmSandbox);
  });

  it('keeps each answer\'s files as they were, and forgets everything on reset', async () => {
    stack = await startLocal();
    stack.chat.script.push({ python: "open('table.csv', 'w').write('v1')" }, { text: 'one' });
    const first = await ask(stack, 'write v1');
    stack.chat.script.push({ python: "open('table.csv', 'w').write('v2')" }, { text: 'two' });
    const second = await ask(stack, 'write v2', { session: first.session });
    expect((await readAll(await stack.engine.openOutput(first.outputs[0]!.ref))).toString()).toBe('v1');
    expect((await readAll(await stack.engine.openOutput(second.outputs[0]!.ref))).toString()).toBe('v2');

    await stack.engine.forget!(second.session);
    await expect(stack.engine.openOutput(first.outputs[0]!.ref)).rejects.toMatchObject({ code: 'output_unavailable' });
    expect((await readdir(join(stack.root, 'sessions'))).filter((n) => !n.startsWith('.'))).toEqual([]);
  });

  it('stops a running execution promptly when the turn is aborted', async () => {
    stack = await startLocal();
    stack.chat.script.push({ python: 'import time\ntime.sleep(60)' });
    const controller = new AbortController();
    const running = ask(stack, 'slow', { signal: controller.signal });
    await delay(1500);
    const aborted = Date.now();
    controller.abort(new Error('deadline'));
    await expect(running).rejects.toThrow('deadline');
    expect(Date.now() - aborted).toBeLessThan(2000);
  });
});
