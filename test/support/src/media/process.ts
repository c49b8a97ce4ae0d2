import { type ChildProcess, type StdioOptions, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { MediaFixtureError } from './errors.js';

/** How a process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Options for stopping a process. */
export interface StopOptions {
  /**
   * SIGKILL at once instead of SIGTERM first: the source dies without writing a trailer or closing its
   * connection cleanly (what a crashed encoder or a pulled cable looks like to the ingest).
   * @default false
   */
  readonly abrupt?: boolean;
  /** How long to wait after SIGTERM before SIGKILL. @default 3000 */
  readonly graceMs?: number;
}

/** A child process started without a shell, whose stderr tail is kept for error messages. */
export interface ManagedProcess {
  readonly pid: number;
  /** The program name, for messages. */
  readonly name: string;
  /** Resolves once the process has exited and been reaped (Node waits for its children). */
  readonly exited: Promise<ExitInfo>;
  /** True until the process has exited. */
  running(): boolean;
  /** The last few KiB the process wrote to stderr. */
  stderrTail(): string;
  /** SIGTERM, SIGKILL after `graceMs`, then waits until it is reaped. Safe to call more than once. */
  stop(options?: StopOptions): Promise<ExitInfo>;
}

const STDERR_TAIL_BYTES = 8 * 1024;

// Every process started here, so that a test run that forgets stop() does not leave encoders publishing
// into the void: on a normal exit, whatever still runs gets SIGKILL.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

const SETPRIV = '/usr/bin/setpriv';
const hasSetpriv = (() => {
  try {
    accessSync(SETPRIV, constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

/** The absolute path of `command` on PATH; throws `missing_tool` when it is not installed. */
function resolveExecutable(command: string): string {
  if (command.includes('/')) return command;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new MediaFixtureError(
    `${command} not found on PATH; install the media packages with: bash deploy/local/stack.sh up`,
    { code: 'missing_tool', tool: command },
  );
}

/**
 * spawn() without a shell, tied to this process's life. Vitest ends its workers without running 'exit'
 * handlers, and a child outlives a parent killed by a signal, so a timed-out or crashed test would orphan
 * its ffmpeg and nginx. `setpriv --pdeathsig KILL` (util-linux) sets PR_SET_PDEATHSIG and then execs the
 * program (same pid, same /proc comm): the kernel SIGKILLs it when the thread that spawned it dies.
 */
function launch(command: string, args: readonly string[], stdio: StdioOptions, cwd?: string): ChildProcess {
  const executable = resolveExecutable(command);
  return hasSetpriv
    ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', executable, ...args], { cwd, stdio })
    : spawn(executable, args, { cwd, stdio });
}

/**
 * Starts `command args` (no shell), stdin closed, stderr kept (tail), stdout handed to `onStdout` or ignored.
 * Throws `missing_tool` when the program is not installed.
 */
export async function spawnManaged(
  command: string,
  args: readonly string[],
  options: { onStdout?: (chunk: Buffer) => void; cwd?: string } = {},
): Promise<ManagedProcess> {
  installExitHook();
  const child = launch(command, args, ['ignore', options.onStdout ? 'pipe' : 'ignore', 'pipe'], options.cwd);
  if (child.pid === undefined) {
    // spawn reports ENOENT and friends asynchronously, with no pid.
    const error = await new Promise<unknown>((resolve) => child.once('error', resolve));
    throw MediaFixtureError.from(error, { tool: command });
  }
  const pid = child.pid;
  live.add(child);
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
  });
  if (options.onStdout) child.stdout?.on('data', options.onStdout);
  let isRunning = true;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      isRunning = false;
      live.delete(child);
      resolve({ code, signal });
    });
  });
  child.on('error', () => {
    // A failed kill() after exit; the 'exit' event above is what counts.
  });

  async function stop({ abrupt = false, graceMs = 3000 }: StopOptions = {}): Promise<ExitInfo> {
    if (!isRunning) return exited;
    child.kill(abrupt ? 'SIGKILL' : 'SIGTERM');
    if (!abrupt) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const first = await Promise.race([exited, graceOver]);
      clearTimeout(timer);
      if (first === 'timeout' && isRunning) child.kill('SIGKILL');
    }
    return exited;
  }

  return {
    pid,
    name: command,
    exited,
    running: () => isRunning,
    stderrTail: () => tail,
    stop,
  };
}

/** Runs a short-lived tool (no shell) to completion and returns its stdout; throws `tool_failed` on failure. */
export async function runTool(
  command: string,
  args: readonly string[],
  { input, timeoutMs = 120_000 }: { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<Buffer> {
  installExitHook();
  const child = launch(command, args, [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']);
  if (child.pid === undefined) {
    const error = await new Promise<unknown>((resolve) => child.once('error', resolve));
    throw MediaFixtureError.from(error, { tool: command });
  }
  live.add(child);
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
  });
  if (input !== undefined) {
    // EPIPE when the tool exits without reading its input: the exit code says what happened.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await new Promise<ExitInfo>((resolve) =>
    child.once('close', (c, s) => resolve({ code: c, signal: s })),
  );
  clearTimeout(timer);
  live.delete(child);
  if (code !== 0) {
    const why = signal === 'SIGKILL' ? `was killed after ${timeoutMs} ms` : `exited with ${code ?? signal}`;
    throw new MediaFixtureError(`${command} ${why}`, { code: 'tool_failed', tool: command, stderr });
  }
  return Buffer.concat(stdout);
}

/**
 * A TCP port that was free on 127.0.0.1 a moment ago (the OS picked it for a listen on port 0). Another
 * process may take it before the caller binds it; the servers here retry with a fresh port when that happens.
 */
export async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port from listen(0)');
  return address.port;
}

/** A UDP port that was free on 127.0.0.1 a moment ago (SRT runs over UDP). */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** True when something accepts a TCP connection on 127.0.0.1:port. */
export function tcpPortAccepts(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** True when a UDP socket is bound to port `port` (any address), read from /proc/net/udp{,6}. */
export function udpPortBound(port: number): boolean {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6 on this machine
    }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local?.endsWith(hexPort)) return true;
    }
  }
  return false;
}

/** One row of the process table. */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  /** The kernel's state letter: R, S, D, Z (zombie), ... */
  readonly state: string;
  /** The executable name as the kernel keeps it (at most 15 characters). */
  readonly comm: string;
}

/** The processes whose name (`/proc/PID/comm`) is `comm`, zombies included, read from /proc. */
export function listProcesses(comm: string): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // it exited while we looked
    }
    // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so cut at the last ')'.
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const name = stat.slice(open + 1, close);
    if (name !== comm) continue;
    const [state = '?', ppid = '0'] = stat.slice(close + 2).split(' ');
    found.push({ pid: Number(entry), ppid: Number(ppid), state, comm: name });
  }
  return found;
}

/**
 * The ids of the ffmpeg processes alive now (zombies included: an unreaped child is a leak too).
 * `childrenOf: process.pid` narrows it to this process's children, which matters when other test files or
 * other people's runs use ffmpeg on the same machine; an orphan is re-parented to init and drops out of that
 * view, so tests also check that the pids they were handed are gone.
 */
export function ffmpegPids({ childrenOf }: { childrenOf?: number } = {}): number[] {
  return listProcesses('ffmpeg')
    .filter((p) => childrenOf === undefined || p.ppid === childrenOf)
    .map((p) => p.pid);
}

/** True while `pid` exists in the process table (zombie or not). */
export function pidExists(pid: number): boolean {
  try {
    readFileSync(`/proc/${pid}/stat`);
    return true;
  } catch {
    return false;
  }
}

/**
 * A new temp dir `$TMPDIR/livelens-KIND-PID-XXXXXX`. Handles remove theirs in `stop()`; a test whose worker
 * died never calls it, so each call first removes the dirs of this kind whose process is gone.
 */
export function processTempDir(kind: string): string {
  const prefix = `livelens-${kind}-`;
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(prefix)) continue;
    const pid = Number(entry.slice(prefix.length).split('-')[0]);
    if (pid > 0 && pid !== process.pid && !pidExists(pid)) {
      rmSync(join(tmpdir(), entry), { recursive: true, force: true });
    }
  }
  return mkdtempSync(join(tmpdir(), `${prefix}${process.pid}-`));
}
