/**
 * A server app run in a child Node process, for what a Jest process cannot show (Jest handles
 * unhandled rejections itself): the fixture is built JavaScript (`npm run build`), started with the
 * Node running the tests and Node's default flags. It talks in lines: `listening <port>` on stdout,
 * then lines the test waits for; `stop` on stdin asks it to end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPOSITORY = fileURLToPath(new URL('../..', import.meta.url));

export interface ProcessEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** `.ts` files under `dir`, recursively. */
function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .map((file) => join(dir, file));
}

/**
 * Throws, saying to run the build, unless every source has its JavaScript and none is newer than it:
 * a missing or stale build would test other code than the sources (`npm test` builds first).
 */
export function requireBuilt(builds: Array<{ sources: string; output: string }>): void {
  const problems: string[] = [];
  for (const { sources, output } of builds) {
    for (const source of sourcesUnder(join(REPOSITORY, sources))) {
      const built = join(REPOSITORY, output, relative(join(REPOSITORY, sources), source)).replace(/\.ts$/, '.js');
      if (!existsSync(built)) problems.push(`${relative(REPOSITORY, built)} is missing`);
      else if (statSync(source).mtimeMs > statSync(built).mtimeMs) problems.push(`${relative(REPOSITORY, built)} is older than ${relative(REPOSITORY, source)}`);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 5).join('; ') + (problems.length > 5 ? `; and ${problems.length - 5} more` : '');
    throw new Error(`This test runs the built JavaScript: run \`npm run build\` first (\`npm test\` does it). ${shown}`);
  }
}

export class ServerProcess {
  private stdoutText = '';
  private stderrText = '';
  private lineWaiters: Array<() => void> = [];
  private ending: ProcessEnd | undefined;
  /** Resolves when the process ended, however it did. */
  readonly ended: Promise<ProcessEnd>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdoutText += chunk;
      this.wake();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderrText += chunk));
    this.ended = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.ending = { code, signal };
        this.wake();
        resolve(this.ending);
      }),
    );
  }

  /** Starts `node <script> ...args` with Node's defaults (no NODE_OPTIONS) and waits for its `listening <port>`. */
  static async start(script: string, args: string[]): Promise<{ server: ServerProcess; port: number }> {
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [script, ...args], { cwd: REPOSITORY, env, stdio: ['pipe', 'pipe', 'pipe'] });
    const server = new ServerProcess(child);
    try {
      const [listening] = await server.lines(/^listening (\d+)$/, 1, 20_000);
      return { server, port: Number(/\d+/.exec(listening)![0]) };
    } catch (error) {
      server.kill();
      throw error;
    }
  }

  get stdout(): string {
    return this.stdoutText;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** The first `count` stdout lines matching `pattern`; rejects, with what the process printed, if it ends first or after `timeoutMs`. */
  async lines(pattern: RegExp, count: number, timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const matching = this.stdoutText.split('\n').filter((line) => pattern.test(line));
      if (matching.length >= count) return matching.slice(0, count);
      if (this.ending !== undefined) throw new Error(`The server process ended (${this.describe()}) after ${matching.length} of ${count} lines ${pattern}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`Timed out after ${matching.length} of ${count} lines ${pattern}; ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.lineWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /**
   * `work`'s outcome while the process runs. If the process ends first, or `work` fails as it ends (a
   * client's reset connection often comes before the process's exit), rejects saying how it ended instead.
   */
  async whileRunning<T>(work: Promise<T>): Promise<T> {
    const endedFirst = this.ended.then(() => Promise.reject(new Error(`The server process ended: ${this.describe()}`)));
    endedFirst.catch(() => undefined);
    try {
      return await Promise.race([work, endedFirst]);
    } catch (error) {
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, 2000)));
      await Promise.race([this.ended, grace]).finally(() => clearTimeout(timer));
      if (this.ending !== undefined) throw new Error(`The server process ended: ${this.describe()}`, { cause: error });
      throw error;
    }
  }

  /** Asks the process to stop and waits for it to end; kills it (and says so) if it has not within `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<ProcessEnd> {
    // Ending stdin too: an open pipe would keep the process alive once the app has closed.
    if (this.ending === undefined) this.child.stdin!.end('stop\n');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    const end = await Promise.race([this.ended, late]).finally(() => clearTimeout(timer));
    if (end !== 'late') return end;
    this.kill();
    throw new Error(`The server process did not end within ${timeoutMs} ms of "stop"; ${this.describe()}`);
  }

  /** Ends the process now; harmless once it ended. */
  kill(): void {
    if (this.ending === undefined) this.child.kill('SIGKILL');
  }

  private describe(): string {
    const end = this.ending === undefined ? 'still running' : `exit code ${this.ending.code}, signal ${this.ending.signal}`;
    return `${end}; stderr: ${JSON.stringify(this.stderrText.slice(0, 2000))}`;
  }

  private wake(): void {
    for (const waiter of this.lineWaiters.splice(0)) waiter();
  }
}
