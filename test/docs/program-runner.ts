/**
 * Runs a docs `program` block as a user would run it: transpiled with the
 * project's compiler options into a .js file inside the repository (so the
 * bare import `nest-websocket-routes` resolves, by the package's reference to
 * itself, to the built dist/), started in a child Node process with PORT set
 * to a free port, and waited for until it accepts connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import ts from 'typescript';
import { blockPlace, type MarkdownBlock, repositoryRoot } from './markdown-blocks.js';
import { compilerOptions } from './snippet-compiler.js';

/** Under build/ (git-ignored) and under the package root, whose package.json makes .js an ES module and maps the package's own name to dist/. */
const PROGRAMS_DIRECTORY = join(repositoryRoot, 'build', 'doc-programs');
const BUILT_ENTRY = join(repositoryRoot, 'dist', 'index.js');
/** Starting Nest in a fresh process on a busy machine takes seconds; a program that never listens fails after this. */
const LISTEN_DEADLINE_MS = 20_000;
const POLL_INTERVAL_MS = 100;

/** Throws, saying what to run, when the built package the programs import is not there. */
export function requireBuiltPackage(): void {
  if (!existsSync(BUILT_ENTRY)) {
    throw new Error(`The docs' programs import the built package, and ${BUILT_ENTRY} is missing: run \`npm run build\` first (\`npm test\` does it).`);
  }
}

/** Writes the block as JavaScript and returns the file's path. */
function writeProgram(block: MarkdownBlock): string {
  // .mts: under NodeNext the name decides the module format, and the file it becomes is an ES module.
  const { outputText } = ts.transpileModule(block.code, { compilerOptions: compilerOptions(), fileName: `${blockPlace(block)}.mts` });
  mkdirSync(PROGRAMS_DIRECTORY, { recursive: true });
  const path = join(PROGRAMS_DIRECTORY, `${block.page.replaceAll('/', '__')}-${block.line}.js`);
  writeFileSync(path, outputText);
  return path;
}

async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class RunningProgram {
  private output = '';
  private errors = '';
  private exit: string | undefined;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.errors += chunk));
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = `exit code ${code}, signal ${signal}`;
        resolve();
      });
      // A process that could not start has no exit to wait for.
      child.once('error', (error) => {
        this.exit = `not started: ${error.message}`;
        resolve();
      });
    });
  }

  /** Starts the block's program and waits until its port accepts connections; the process is killed if it never does. */
  static async start(block: MarkdownBlock): Promise<RunningProgram> {
    const script = writeProgram(block);
    const port = await freeLoopbackPort();
    // Node's defaults, as `node main.js` in a user's shell: no flags Jest's own process was given; Nest's log uncoloured, for the failure message.
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), NO_COLOR: '1' };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [script], { cwd: repositoryRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const program = new RunningProgram(child, port);
    try {
      await program.waitListening();
      return program;
    } catch (error) {
      await program.kill();
      throw error;
    }
  }

  private async waitListening(): Promise<void> {
    const deadline = Date.now() + LISTEN_DEADLINE_MS;
    while (!(await accepts(this.port))) {
      if (this.exit !== undefined) throw new Error(`The program ended before it listened on PORT ${this.port}. ${this.describe()}`);
      if (Date.now() > deadline) throw new Error(`The program did not listen on PORT ${this.port} within ${LISTEN_DEADLINE_MS} ms. ${this.describe()}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  /** What the process printed and how it ended, for a failure message. */
  describe(): string {
    return `Process: ${this.exit ?? 'still running'}.\nstderr:\n${this.errors || '(empty)'}\nstdout:\n${this.output || '(empty)'}`;
  }

  /** Ends the process and waits until it is gone; harmless once it ended. */
  async kill(): Promise<void> {
    if (this.exit === undefined) this.child.kill('SIGKILL');
    await this.exited;
  }
}
