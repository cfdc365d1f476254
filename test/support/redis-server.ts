/**
 * A real `redis-server` (Debian's package, Redis 7) run by a test on a loopback port of its own, with its own
 * temp dir, so the test can kill it, restart it on the same port and dir (what append-only persistence keeps
 * survives), and talk to it over raw RESP. A test file calls `remove()` in `afterAll` so no server outlives it;
 * should the Jest worker end first, the server is killed with it: on Node's 'exit', and, where util-linux's
 * setpriv exists (Debian), by the kernel when the worker dies any other way (Jest force-ends a worker that does not
 * exit with SIGTERM, which runs no 'exit' listener).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface RedisServerOptions {
  /** Persist every write to the append-only file before replying (`appendfsync always`), so it survives `kill()`. */
  appendOnly?: boolean;
  /** A loopback port; a free one is picked when absent. */
  port?: number;
}

const READY_TIMEOUT_MS = 10_000;
/** How long one readiness PING may go unanswered (while the server loads its files, it answers -LOADING at once). */
const PING_TIMEOUT_MS = 1000;
const STOP_TIMEOUT_MS = 10_000;
/** The tail of the server's stdout and stderr kept for error messages. */
const OUTPUT_KEPT = 4000;

/** A port free on 127.0.0.1 right now (the OS picks it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

const SETPRIV = '/usr/bin/setpriv';

/** The path of `command` in a directory of PATH, or undefined. */
function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return join(dir, command);
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** One command as a RESP array of bulk strings. */
function encodeCommand(args: string[]): Buffer {
  const parts = args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
  return Buffer.from(`*${args.length}\r\n${parts.join('')}`);
}

/** Where the RESP2 reply starting at `from` ends, or undefined while it is incomplete. */
function replyEnd(reply: Buffer, from: number): number | undefined {
  const lineEnd = reply.indexOf('\r\n', from);
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(reply[from]);
  const count = Number(reply.toString('latin1', from + 1, lineEnd));
  let end = lineEnd + 2;
  if (type === '$') {
    if (count < 0) return end;
    return end + count + 2 <= reply.length ? end + count + 2 : undefined;
  }
  if (type !== '*') return end;
  for (let element = 0; element < count; element++) {
    const next = replyEnd(reply, end);
    if (next === undefined) return undefined;
    end = next;
  }
  return end;
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private ending: string | undefined;
  private output = '';
  // Synchronous, as an 'exit' listener must be: a server left running would hold its port past the test run.
  private readonly killOnExit = () => this.child?.kill('SIGKILL');

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly appendOnly: boolean,
  ) {}

  /** Starts a server and waits until it answers PING; throws with its output if it does not. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const dir = await mkdtemp(join(tmpdir(), 'redis-test-'));
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(options.port ?? (await freePort()), dir, options.appendOnly ?? false);
      try {
        await server.launch();
        return server;
      } catch (error) {
        // Another process can take the probed port before redis-server binds it: then try another port.
        if (options.port === undefined && attempt < 3 && server.output.includes('Address already in use')) continue;
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Ends the server at once (SIGKILL), as a crash would; resolves when it exited. */
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** Asks the server to shut down (SIGTERM); resolves when it exited, and kills it if it has not within 10 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), STOP_TIMEOUT_MS)));
    const outcome = await Promise.race([this.exited, late]).finally(() => clearTimeout(timer));
    if (outcome !== 'late') return;
    await this.kill();
    throw new Error(`redis-server on port ${this.port} did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM; ${this.describe()}`);
  }

  /** Starts the server again on the same port and dir (stopping it first if it runs) and waits until it is ready. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Stops the server if it runs and deletes its dir. */
  async remove(): Promise<void> {
    try {
      await this.stop();
    } finally {
      await rm(this.dir, { recursive: true, force: true });
    }
  }

  /** Sends one command on a fresh connection and returns the raw RESP reply, e.g. `+PONG\r\n` or `$-1\r\n`. */
  command(...args: string[]): Promise<string> {
    return this.exchange(args);
  }

  /** `command`, and when `idleTimeoutMs` is given, a rejection once the connection was that long without a byte. */
  private exchange(args: string[], idleTimeoutMs?: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.port, '127.0.0.1');
      if (idleTimeoutMs !== undefined) {
        socket.setTimeout(idleTimeoutMs, () => socket.destroy(new Error(`no reply to ${args[0]} within ${idleTimeoutMs} ms`)));
      }
      let reply = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        reply = Buffer.concat([reply, chunk]);
        const end = replyEnd(reply, 0);
        if (end === undefined) return;
        socket.destroy();
        resolve(reply.toString('utf8', 0, end));
      });
      socket.on('error', reject);
      socket.on('close', () =>
        reject(new Error(`redis-server on port ${this.port} closed the connection before a full reply to ${args[0]}: ${JSON.stringify(reply.toString())}`)),
      );
      socket.write(encodeCommand(args));
    });
  }

  private arguments(): string[] {
    const persistence = this.appendOnly ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
    return [
      ...['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', ''],
      ...persistence,
      ...['--protected-mode', 'no', '--loglevel', 'warning', '--daemonize', 'no'],
      // Redis 7 refuses DEBUG by default; tests use DEBUG SLEEP to make the server unresponsive.
      ...['--enable-debug-command', 'local'],
    ];
  }

  private async launch(): Promise<void> {
    this.output = '';
    this.ending = undefined;
    const executable = onPath('redis-server');
    if (executable === undefined) {
      throw new Error("redis-server is not on PATH: install Debian's redis-server package (`.ci/run` does it)");
    }
    // --pdeathsig: the kernel kills the server when the worker that spawned it dies, however it dies.
    const child = existsSync(SETPRIV)
      ? spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', executable, ...this.arguments()], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(executable, this.arguments(), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const record = (chunk: string) => (this.output = (this.output + chunk).slice(-OUTPUT_KEPT));
    child.stdout!.setEncoding('utf8').on('data', record);
    child.stderr!.setEncoding('utf8').on('data', record);
    this.exited = new Promise((resolve) => {
      const ended = (how: string) => {
        this.ending ??= how;
        this.child = undefined;
        process.off('exit', this.killOnExit);
        resolve();
      };
      child.once('exit', (code, signal) => ended(`exit code ${code}, signal ${signal}`));
      child.once('error', (error) => ended(error.message));
    });
    process.once('exit', this.killOnExit);
    try {
      await this.untilReady();
    } catch (error) {
      await this.kill();
      throw error;
    }
  }

  private async untilReady(): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.ending !== undefined) throw new Error(`redis-server on port ${this.port} ended before accepting connections; ${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer PING within ${READY_TIMEOUT_MS} ms; ${this.describe()}`);
      // Refused while it binds, -LOADING while it reads the append-only file; a reply that never comes means
      // something else holds the port (the server then exits, which ends the wait).
      const ping = this.exchange(['PING'], PING_TIMEOUT_MS).catch(() => undefined);
      const reply = await Promise.race([ping, this.exited]);
      if (reply === '+PONG\r\n') return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private describe(): string {
    const state = this.ending ?? 'still running';
    return `${state}; its output: ${JSON.stringify(this.output)}`;
  }
}
