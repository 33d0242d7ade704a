import { lstatSync, readlinkSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';

/**
 * How one conversation's Python process is started: inside bubblewrap (`bwrap`), or, only when the
 * operator said so with CRUNCH_SANDBOX=none, directly on the host.
 *
 * The bubblewrap sandbox has every namespace of its own (no network at all, its own PIDs, IPC, hostname,
 * a user namespace it cannot nest), no capabilities, a cleared environment, and a read-only view of only
 * what Python needs: /usr, the few /etc files the dynamic linker, matplotlib and fontconfig read, and a
 * generated /etc/passwd. Writable: the conversation's own folder at /mnt/data, a size-capped private
 * /tmp and a small /dev/shm. Not there: the bot's directory and .env, its data store, home directories,
 * other conversations' folders, /etc/shadow, /sys. Memory, processes, file size, CPU time and output are
 * capped by the runner itself (setrlimit before any user code); wall-clock time by the interpreter.
 */

export type SandboxMode = 'bwrap' | 'none';

export interface SandboxSpec {
  mode: SandboxMode;
  /** Absolute path of the interpreter; with bwrap it must live under /usr (only /usr is mounted). */
  python: string;
  /** The folder of the engine's Python scripts (runner.py, probe.py) on the host; bound read-only at SCRIPTS_DIR. */
  scripts: string;
  /** Generated files the sandbox reads: etc/passwd, etc/group, the matplotlib font cache. */
  supportDir: string;
  /** Font cache files (absolute host paths) mounted read-only into the sandbox's matplotlib config dir. */
  fontCache: string[];
  /** Size of the private /tmp, in bytes. */
  tmpBytes: number;
  /** Paths under /usr that must stay hidden (the bot's own directory when it is installed there). */
  hidden: string[];
  /** Who the code runs as on the host: nobody when the bot runs as root, so that process limits apply. */
  owner: { uid: number; gid: number } | undefined;
}

export interface SandboxCommand {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  uid?: number;
  gid?: number;
}

/** Where the conversation's folder appears inside the sandbox: the path the hosted tool uses too. */
export const SANDBOX_DATA_DIR = '/mnt/data';
const SCRIPTS_DIR = '/opt/crunch';
const MPL_DIR = '/tmp/matplotlib';
const SHM_BYTES = 64 * 1024 * 1024;
/** The uid and gid of `nobody` on Debian, which the code runs as when the bot itself runs as root. */
export const NOBODY = { uid: 65534, gid: 65534 };

/** /etc files and folders Python and its libraries read; nothing secret (no shadow, no ssl keys). */
const ETC = [
  'alternatives',
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'localtime',
  'fonts',
  'matplotlibrc',
  'mime.types',
  'nsswitch.conf',
  'python3',
  'python3.11',
  'python3.12',
  'python3.13',
];

/** Merged-/usr systems have these as symlinks into /usr; older layouts as real directories. */
const ROOT_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];

/** Hardware hints the numeric libraries need on some CPUs (see README); not secrets. */
const PASSED_ENV = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'];

/** The environment the code sees: nothing of the bot's but hardware hints. */
export function sandboxEnv(home: string, mplDir: string): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    MPLBACKEND: 'Agg',
    MPLCONFIGDIR: mplDir,
    // One thread per numeric library: sessions share the machine's few cores, and threads count as processes.
    OPENBLAS_NUM_THREADS: '1',
    OMP_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
  };
  for (const name of PASSED_ENV) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

function rootEntries(): string[] {
  const args: string[] = [];
  for (const name of ROOT_LINKS) {
    const path = `/${name}`;
    try {
      const info = lstatSync(path);
      if (info.isSymbolicLink()) args.push('--symlink', readlinkSync(path), path);
      else if (info.isDirectory()) args.push('--ro-bind', path, path);
    } catch {
      // absent on this system
    }
  }
  return args;
}

function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return !rel.startsWith('..') && !isAbsolute(rel);
}

/** The command that runs one of the engine's scripts (runner.py, probe.py) for the conversation folder `dataDir`. */
export function sandboxCommand(spec: SandboxSpec, dataDir: string, script: 'runner.py' | 'probe.py', scriptArgs: string[] = []): SandboxCommand {
  const ids = spec.owner ?? {};
  if (spec.mode === 'none') {
    const env = { ...sandboxEnv(dataDir, join(spec.supportDir, 'matplotlib')), TMPDIR: '/tmp' };
    return { file: spec.python, args: ['-I', '-B', join(spec.scripts, script), ...scriptArgs], env, cwd: dataDir, ...ids };
  }
  const env = sandboxEnv('/tmp', MPL_DIR);
  const args = [
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--cap-drop',
    'ALL',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'crunch',
    '--clearenv',
    ...Object.entries(env).flatMap(([name, value]) => ['--setenv', name, value]),
    '--ro-bind',
    '/usr',
    '/usr',
    ...spec.hidden.filter((path) => isUnder(path, '/usr')).flatMap((path) => ['--tmpfs', path]),
    ...rootEntries(),
    ...ETC.flatMap((name) => ['--ro-bind-try', `/etc/${name}`, `/etc/${name}`]),
    '--ro-bind',
    join(spec.supportDir, 'etc', 'passwd'),
    '/etc/passwd',
    '--ro-bind',
    join(spec.supportDir, 'etc', 'group'),
    '/etc/group',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    // Shared memory (multiprocessing's semaphores) is RAM too: capped, and /dev itself made read-only below.
    '--size',
    String(SHM_BYTES),
    '--tmpfs',
    '/dev/shm',
    '--size',
    String(spec.tmpBytes),
    '--tmpfs',
    '/tmp',
    '--dir',
    MPL_DIR,
    ...spec.fontCache.flatMap((file) => ['--ro-bind', file, join(MPL_DIR, basename(file))]),
    '--bind',
    dataDir,
    SANDBOX_DATA_DIR,
    '--ro-bind',
    spec.scripts,
    SCRIPTS_DIR,
    // The sandbox's own root (where /etc and /opt were made) and /dev become read-only; /mnt/data, /tmp and
    // /dev/shm stay writable.
    '--remount-ro',
    '/dev',
    '--remount-ro',
    '/',
    '--chdir',
    SANDBOX_DATA_DIR,
    '--',
    spec.python,
    '-I',
    '-B',
    join(SCRIPTS_DIR, script),
    ...scriptArgs,
  ];
  // bwrap's own environment is visible inside as /proc/1/environ: it gets nothing of the bot's.
  return { file: 'bwrap', args, env: { PATH: '/usr/bin:/bin' }, cwd: '/', ...ids };
}

/** The folder the runner works in: /mnt/data inside the sandbox, the conversation folder without one. */
export function workdirFor(spec: SandboxSpec, dataDir: string): string {
  return spec.mode === 'bwrap' ? SANDBOX_DATA_DIR : resolve(dataDir);
}
