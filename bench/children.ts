/**
 * The orchestrator's handles on its child processes: forking, requests and replies over IPC, stopping,
 * and the commands an echo server child takes. A child that dies unasked, or does not answer in time,
 * fails the whole run; so does one that does not exit by itself when told to stop. Server children run on
 * BENCH_NODE's binary when it is set, clients on this process's Node.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ServerCommand, ServerKind, ServerMessage } from './messages.js';
import { PROFILE_DIR, REPLY_TIMEOUT_MS, SERVER_FLAGS, SERVER_NODE } from './settings.js';

/** How long a child told to stop may take to exit before it is killed and the run fails. */
const STOP_GRACE_MS = 5_000;

const live = new Set<Child>();
let exiting = false;

type Typed = { type: string };

/** How a child is forked: Node's flags, the Node binary (default: this process's), variables added to this process's environment. */
export interface ChildOptions {
  execArgv?: string[];
  execPath?: string;
  env?: Record<string, string>;
}

/** Environment a server kind needs beyond the module it runs (server-child.ts). */
const SERVER_ENV: Partial<Record<ServerKind, Record<string, string>>> = {
  // ws's documented switch: its JavaScript masking even where bufferutil is installed.
  'ws-plain': { WS_NO_BUFFER_UTIL: '1' },
};

/** For the printed headers: which Node runs the clients and which the servers. */
export function nodeVersions(): string {
  const servers =
    SERVER_NODE === undefined ? 'the same' : `${execFileSync(SERVER_NODE, ['--version'], { encoding: 'utf8' }).trim()} (BENCH_NODE=${SERVER_NODE})`;
  const flags = SERVER_FLAGS.length === 0 ? '' : `, with ${SERVER_FLAGS.join(' ')} (BENCH_SERVER_FLAGS)`;
  return `clients and orchestrator on node ${process.version}, servers on ${servers}${flags}`;
}

const isType = (type: string) => (message: unknown): boolean =>
  typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;

export class Child {
  private readonly process: ChildProcess;
  private stopRequested = false;

  constructor(file: string, args: string[], readonly name: string, options: ChildOptions = {}) {
    this.process = fork(fileURLToPath(new URL(file, import.meta.url)), args, {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: options.execArgv ?? [],
      execPath: options.execPath,
      env: options.env === undefined ? undefined : { ...process.env, ...options.env },
    });
    live.add(this);
    this.process.once('exit', (code, signal) => {
      live.delete(this);
      if (!this.stopRequested && !exiting) {
        void exitAfterStopping(1, `${name} (pid ${this.process.pid}) exited unexpectedly (code ${code}, signal ${signal})`);
      }
    });
  }

  send(message: Typed): void {
    this.process.send(message);
  }

  /** Calls `listener` with each message of that type until the returned function is called. */
  onEach<T extends Typed>(type: T['type'], listener: (message: T) => void): () => void {
    const filtered = (message: unknown) => {
      if (isType(type)(message)) listener(message as T);
    };
    this.process.on('message', filtered);
    return () => this.process.off('message', filtered);
  }

  /** The next message of that type; rejects after REPLY_TIMEOUT_MS, since the child must have hung. */
  next<T extends Typed>(type: T['type']): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stopListening();
        reject(new Error(`${this.name} did not answer (${type}) within ${REPLY_TIMEOUT_MS} ms`));
      }, REPLY_TIMEOUT_MS);
      const stopListening = this.onEach<T>(type, (message) => {
        clearTimeout(timer);
        stopListening();
        resolve(message);
      });
    });
  }

  request<T extends Typed>(message: Typed, replyType: T['type']): Promise<T> {
    const reply = this.next<T>(replyType);
    this.send(message);
    return reply;
  }

  /** Asks the child to stop; resolves true once it exited, false if it had to be killed after STOP_GRACE_MS. */
  stop(): Promise<boolean> {
    this.stopRequested = true;
    if (this.process.exitCode !== null || this.process.signalCode !== null) return Promise.resolve(true);
    if (this.process.connected) this.send({ type: 'stop' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // Our own child, by handle.
        this.process.kill('SIGKILL');
        resolve(false);
      }, STOP_GRACE_MS);
      this.process.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

/** Stops every child and exits; with 1 when asked to, or when a child did not stop by itself. */
export async function exitAfterStopping(code: number, failure?: string): Promise<never> {
  if (failure !== undefined) console.error(`\nFAILED: ${failure}`);
  exiting = true;
  const children = [...live];
  const stopped = await Promise.all(children.map((child) => child.stop()));
  const hung = children.filter((_, index) => !stopped[index]).map((child) => child.name);
  if (hung.length > 0) console.error(`\nFAILED: did not exit within ${STOP_GRACE_MS} ms of stop, killed: ${hung.join(', ')}`);
  process.exit(hung.length > 0 ? 1 : code);
}

/**
 * Runs a bench's `main`, which resolves with the checks that failed: those are printed and the bench exits 1,
 * as it does when `main` throws; otherwise 0. Every child is stopped first (exitAfterStopping).
 */
export function runBench(main: () => Promise<string[]>): void {
  main().then(
    async (errors) => {
      if (errors.length > 0) {
        console.error(`\nFAILED: ${errors.length} error(s):`);
        for (const error of errors.slice(0, 50)) console.error(`  ${error}`);
        await exitAfterStopping(1);
      }
      await exitAfterStopping(0);
    },
    async (error: unknown) => {
      await exitAfterStopping(1, error instanceof Error ? (error.stack ?? error.message) : String(error));
    },
  );
}

/** An echo server child (server-child.ts) of one kind, with --expose-gc for its memory samples. */
export class EchoServer {
  private constructor(
    readonly url: string,
    readonly deflateUrl: string,
    /** What the server reported of itself: its Node version, and whatever its module adds (ws: bufferutil or not). */
    readonly description: string,
    private readonly child: Child,
  ) {}

  /**
   * `profileName`: write a CPU profile of the server to PROFILE_DIR, as `<kind>-<profileName>.cpuprofile`, when BENCH_PROFILE is set.
   * `args`: what the server module's start() takes (servers/*.ts).
   */
  static async start(kind: ServerKind, profileName?: string, args: string[] = []): Promise<EchoServer> {
    const flags = ['--expose-gc', ...SERVER_FLAGS];
    if (profileName !== undefined && PROFILE_DIR !== undefined) {
      flags.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${kind}-${profileName}.cpuprofile`);
    }
    const child = new Child('./server-child.js', [kind, ...args], `${kind} server`, { execArgv: flags, execPath: SERVER_NODE, env: SERVER_ENV[kind] });
    const ready = await child.next<Extract<ServerMessage, { type: 'ready' }>>('ready');
    const base = `ws://127.0.0.1:${ready.port}`;
    const description = `node ${ready.node}${ready.about === undefined ? '' : `, ${ready.about}`}`;
    return new EchoServer(`${base}${ready.path}`, `${base}${ready.deflatePath}`, description, child);
  }

  /** The server process's CPU time so far, and when it was taken. */
  async cpu(): Promise<{ micros: number; wallNanos: bigint }> {
    const { micros, wallNanos } = await this.child.request<Extract<ServerMessage, { type: 'cpu' }>>({ type: 'cpu' } satisfies ServerCommand, 'cpu');
    return { micros, wallNanos: BigInt(wallNanos) };
  }

  /** The server process's RSS and JS memory (heap used plus external) in bytes, after a full GC. */
  async memory(): Promise<{ rss: number; heap: number }> {
    const { rss, heap } = await this.child.request<Extract<ServerMessage, { type: 'memory' }>>({ type: 'memory' } satisfies ServerCommand, 'memory');
    return { rss, heap };
  }

  stop(): Promise<boolean> {
    return this.child.stop();
  }
}
