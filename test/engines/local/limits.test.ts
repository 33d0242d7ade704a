import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineSession } from '../../../src/core/index.js';
import { ask, type LocalStack, startLocal, TEST_LIMITS } from './harness.js';

/**
 * Each limit against the attack it is there for, for real: the execution is stopped, the model is told
 * why, and the conversation's session still answers afterwards (keeping its variables when the runner
 * stopped the code itself, restarted when the sandbox had to be killed).
 */

// The wall clock is well above the CPU allowance, so that a busy machine never mistakes one for the other.
const LIMITS = { ...TEST_LIMITS, wallMs: 20_000, cpuSeconds: 2, memoryBytes: 768 * 1024 * 1024, maxProcesses: 32, maxFileBytes: 16 * 1024 * 1024, maxOutputChars: 200_000 };
let stack: LocalStack;
let session: EngineSession | undefined;

beforeAll(async () => {
  stack = await startLocal({ limits: LIMITS, tmpBytes: 32 * 1024 * 1024, maxToolRounds: 10 });
}, 60_000);
afterAll(() => stack.close());

const ALIVE = 'import subprocess\nprint("alive", subprocess.run(["echo", "child ok"], capture_output=True, text=True).stdout.strip(), x)';

/** One turn: `x = 42`, the attack, then proof of life; returns what the model was told for each. */
async function attack(code: string, on: LocalStack = stack): Promise<string[]> {
  on.chat.script.push({ python: ['x = 42\nprint("set")', code, ALIVE] }, { text: 'done' });
  const result = await ask(on, 'go', { session: on === stack ? session : undefined });
  if (on === stack) session = result.session;
  return on.chat.requests.at(-1)!.toolResults;
}

describe('per-execution limits', () => {
  it('an infinite loop uses up its CPU seconds and is stopped; the variables survive', async () => {
    const told = await attack('while True:\n    pass');
    expect(told[1]).toBe('Stopped: the code used up its 2 seconds of CPU time. Variables are kept; try a faster approach or a sample of the data.');
    expect(told[2]).toBe('Output:\nalive child ok 42');
  });

  it('code that sleeps past the wall-clock limit is killed, and the session restarts without its variables', async () => {
    const short = await startLocal({ limits: { ...LIMITS, wallMs: 3000, cpuSeconds: 60 } });
    try {
      const started = Date.now();
      const told = await attack('import time\ntime.sleep(600)', short);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(told[1]).toBe(
        'Stopped: it ran past the 3-second limit per execution. The Python session was restarted: variables and imports are gone; the files in the working directory are kept.',
      );
      expect(told[2]).toMatch(/^Note: The Python session had been restarted before this code ran[\s\S]*NameError: name 'x' is not defined/);
    } finally {
      await short.close();
    }
  });

  it('a memory bomb gets a MemoryError at the memory limit', async () => {
    const told = await attack('def bomb():\n    chunks = []\n    while True:\n        chunks.append(bytearray(50 * 1024 * 1024))\nbomb()');
    expect(told[1]).toMatch(/^Error \(the sandbox allows 768 MB of memory\):\nTraceback[\s\S]*MemoryError/);
    expect(told[2]).toBe('Output:\nalive child ok 42');
    const huge = await attack('big = bytearray(8 * 1024 ** 3)');
    expect(huge[1]).toMatch(/MemoryError/);
  });

  it('a fork bomb hits the process limit, and what it started does not outlive the execution', async () => {
    const told = await attack('import os\nwhile True:\n    os.fork()');
    expect(told[1]).toMatch(/^Error:\nTraceback[\s\S]*BlockingIOError: \[Errno 11\] Resource temporarily unavailable/);
    expect(told[2]).toBe('Output:\nalive child ok 42');
    const sleepers = await attack(
      'import os, time\nfor _ in range(20):\n    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)\nprint(len(os.listdir("/proc")))',
    );
    expect(sleepers[2]).toBe('Output:\nalive child ok 42');
    stack.chat.script.push({ python: 'import os\nprint(sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))' }, { text: 'done' });
    session = (await ask(stack, 'processes?', { session })).session;
    expect(stack.chat.requests.at(-1)!.toolResults[0]).toMatch(/^Output:\n\[1, 2\]$/);
  });

  it('a 100 MB print is cut off at the output limit, and only its head and tail reach the model', async () => {
    const told = await attack("print('x' * 100_000_000)");
    expect(told[1]!.length).toBeLessThan(20_000);
    expect(told[1]).toMatch(/^Output:\nx{8000}\n\[\.\.\. 99988000 characters omitted \.\.\.\]\nx{4000}\n\nStopped: the code printed more than 200000 characters\. Variables are kept/);
    expect(told[2]).toBe('Output:\nalive child ok 42');
    const lines = await attack('for i in range(10**9):\n    print(i)');
    expect(lines[1]).toMatch(/^Output:\n0\n1\n2\n[\s\S]*\[\.\.\. \d+ characters omitted \.\.\.\][\s\S]*Stopped: the code printed more than/);
    expect(lines[1]!.length).toBeLessThan(20_000);
    const shell = await attack("import os\nos.system('head -c 100000000 /dev/zero | tr \"\\\\0\" y')");
    expect(shell[1]).toMatch(/^Output of subprocesses and C code:\nyyyy[\s\S]*bytes omitted/);
    expect(shell[1]!.length).toBeLessThan(20_000);
    expect(shell[2]).toBe('Output:\nalive child ok 42');
  });

  it('a file past the size limit fails to write; /tmp and /dev/shm are capped; /dev is read-only', async () => {
    const told = await attack("open('big.bin', 'wb').write(b'0' * (64 * 1024 * 1024))");
    expect(told[1]).toMatch(/OSError: \[Errno 27\] File too large/);
    // Each fills its space, then frees it again (the session lives on into the next test).
    const fill = (dir: string, files: number) =>
      `import glob, os\ntry:\n    for i in range(${files}):\n        open(f'${dir}/fill{i}', 'wb').write(b'0' * (8 * 1024 * 1024))\nfinally:\n    for path in glob.glob('${dir}/fill*'):\n        os.remove(path)`;
    const tmp = await attack(fill('/tmp', 8));
    expect(tmp[1]).toMatch(/OSError: \[Errno 28\] No space left on device/);
    expect(tmp[2]).toBe('Output:\nalive child ok 42');
    const shm = await attack(fill('/dev/shm', 16));
    expect(shm[1]).toMatch(/OSError: \[Errno 28\] No space left on device/);
    const dev = await attack("open('/dev/fill', 'wb').write(b'0')");
    expect(dev[1]).toMatch(/OSError: \[Errno 30\] Read-only file system/);
  });

  it('still lets code use multiprocessing inside its limits', async () => {
    const told = await attack('import multiprocessing as mp\nwith mp.Pool(2) as pool:\n    print(pool.map(abs, [-1, -2, -3]))');
    expect(told[1]).toBe('Output:\n[1, 2, 3]');
    expect(told[2]).toBe('Output:\nalive child ok 42');
  });
});
