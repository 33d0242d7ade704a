import { execFile } from 'node:child_process';
import { access, chmod, copyFile, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CrunchError } from '../../core/index.js';
import { NOBODY, sandboxCommand, sandboxEnv, type SandboxMode, type SandboxSpec } from './sandbox.js';
import type { Workspace } from './workspace.js';

/**
 * Start-up of the local engine's sandbox: the generated files every sandbox reads, a matplotlib font
 * cache built once (so that no interpreter rebuilds it), and a probe that starts a real sandbox and lists
 * the Python packages inside it. A sandbox that cannot start stops the engine with a clear message: it
 * never falls back to running code unconfined.
 */

export interface PythonEnvironment {
  python: string;
  /** Distribution name → version, or null when it is not installed. */
  packages: Record<string, string | null>;
}

export interface SetupOptions {
  mode: SandboxMode;
  python: string;
  /** The folder holding runner.py and probe.py. */
  scripts: string;
  tmpBytes: number;
  /** Paths the sandbox must not see even when they lie under /usr. */
  hidden: string[];
}

const run = promisify(execFile);
const PROBE_TIMEOUT_MS = 60_000;

/** Who sandboxed code runs as: `nobody` when the bot runs as root (process limits do not bind root). */
export function sandboxOwner(): { uid: number; gid: number } | undefined {
  return process.getuid?.() === 0 ? NOBODY : undefined;
}

export async function prepareSandbox(options: SetupOptions, workspace: Workspace): Promise<{ spec: SandboxSpec; environment: PythonEnvironment }> {
  if (options.mode === 'bwrap' && !options.python.startsWith('/usr/')) {
    throw new CrunchError('config', `CRUNCH_PYTHON must be an interpreter under /usr with the bubblewrap sandbox (only /usr is mounted in it); got ${options.python}.`);
  }
  await access(join(options.scripts, 'runner.py')).catch(() => {
    throw new CrunchError('config', `The local engine's Python scripts are missing from ${options.scripts}: the build must copy them next to the engine (npm run build does).`);
  });
  const owner = sandboxOwner();
  const support = join(workspace.root, '.support');
  await mkdir(join(support, 'etc'), { recursive: true, mode: 0o755 });
  const uid = owner?.uid ?? process.getuid?.() ?? NOBODY.uid;
  const gid = owner?.gid ?? process.getgid?.() ?? NOBODY.gid;
  await writeFile(join(support, 'etc', 'passwd'), `sandbox:x:${uid}:${gid}:Crunch sandbox:/tmp:/usr/sbin/nologin\n`);
  await writeFile(join(support, 'etc', 'group'), `sandbox:x:${gid}:\n`);
  const spec: SandboxSpec = {
    mode: options.mode,
    python: options.python,
    scripts: await copyScripts(options.scripts, join(support, 'python')),
    supportDir: support,
    fontCache: await fontCache(options.python, join(support, 'matplotlib')),
    tmpBytes: options.tmpBytes,
    hidden: options.hidden,
    owner,
  };
  const probeDir = join(support, 'probe');
  await mkdir(probeDir, { recursive: true, mode: 0o755 });
  return { spec, environment: await probe(spec, probeDir) };
}

/**
 * The scripts are run from a copy beside the sessions: the sandbox user must be able to reach them, and it
 * cannot always enter the folder the bot was installed in.
 */
async function copyScripts(from: string, to: string): Promise<string> {
  await mkdir(to, { recursive: true, mode: 0o755 });
  for (const name of (await readdir(from)).filter((n) => n.endsWith('.py'))) {
    await copyFile(join(from, name), join(to, name));
    await chmod(join(to, name), 0o644);
  }
  return to;
}

/** Builds matplotlib's font list once, on the host (no user code runs), for every sandbox to read. */
async function fontCache(python: string, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const listed = async () => (await readdir(dir)).filter((name) => /^fontlist.*\.json$/.test(name)).map((name) => join(dir, name));
  if ((await listed()).length === 0) {
    await run(python, ['-I', '-c', 'import matplotlib.font_manager'], { env: sandboxEnv(dir, dir), timeout: PROBE_TIMEOUT_MS }).catch(() => undefined);
  }
  return listed();
}

async function probe(spec: SandboxSpec, probeDir: string): Promise<PythonEnvironment> {
  const command = sandboxCommand(spec, probeDir, 'probe.py');
  try {
    const { stdout } = await run(command.file, command.args, {
      cwd: command.cwd,
      env: command.env,
      timeout: PROBE_TIMEOUT_MS,
      ...(command.uid !== undefined ? { uid: command.uid, gid: command.gid } : {}),
    });
    const parsed = JSON.parse(stdout) as { python: string; packages: Record<string, string | null> };
    return { python: parsed.python, packages: parsed.packages };
  } catch (err) {
    throw new CrunchError('config', explain(spec.mode, command.file, err), { cause: err });
  }
}

function explain(mode: SandboxMode, file: string, err: unknown): string {
  const failure = err as NodeJS.ErrnoException & { stderr?: string };
  if (failure.code === 'ENOENT') {
    return mode === 'bwrap'
      ? 'The local engine needs bubblewrap to sandbox Python, and `bwrap` is not installed. Install it (apt-get install bubblewrap), or set CRUNCH_SANDBOX=none to run Python without a sandbox (not recommended).'
      : `The local engine cannot find Python at ${file}: install python3 or set CRUNCH_PYTHON.`;
  }
  const said = (failure.stderr ?? '').trim().split('\n').slice(-3).join(' ') || failure.message;
  if (mode === 'bwrap') {
    const reach = /source path/i.test(said)
      ? ' The sandbox user must be able to enter every folder above CRUNCH_SESSIONS_DIR; move it out of folders only the bot can enter.'
      : ' It needs unprivileged user namespaces; in a container, allow them (e.g. docker run --security-opt seccomp=unconfined --security-opt apparmor=unconfined).';
    return `The bubblewrap sandbox cannot start here (${said}), and the local engine will not run Python unconfined.${reach} Or set CRUNCH_SANDBOX=none to run Python without a sandbox (not recommended).`;
  }
  return `Python could not start the local engine's runner (${said}).`;
}
