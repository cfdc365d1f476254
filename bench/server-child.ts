/**
 * Benchmark child process: runs one echo server (servers/<kind>.ts) on loopback and answers the
 * orchestrator's CPU and memory samples. Forked with --expose-gc, so memory is measured after a full GC.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerCommand, ServerKind, ServerMessage } from './messages.js';
import type { RunningServer } from './servers/listen.js';

const kind = process.argv[2] as ServerKind;
/** Each kind in its own module, imported alone: the plain `ws` server does not carry Nest in its process. */
const SERVER_MODULES: Record<ServerKind, string> = {
  ours: './servers/ours.js',
  'ours-app': './servers/ours-app.js',
  ws: './servers/ws.js',
  // The same module; the orchestrator sets WS_NO_BUFFER_UTIL=1 for it (children.ts).
  'ws-plain': './servers/ws.js',
  gateway: './servers/gateway.js',
  'cluster-ours': './servers/cluster-ours.js',
  'cluster-socketio': './servers/cluster-socketio.js',
  'cluster-ws': './servers/cluster-ws.js',
};

function send(message: ServerMessage): void {
  process.send!(message);
}

/**
 * RSS, and V8 heap used plus memory outside it held by JS objects (Buffers), once garbage is collected;
 * twice, with a pause for sockets closing and finalizers in between.
 */
async function collectedMemory(): Promise<{ rss: number; heap: number }> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('server-child needs --expose-gc');
  gc();
  await sleep(100);
  gc();
  const { rss, heapUsed, external } = process.memoryUsage();
  return { rss, heap: heapUsed + external };
}

async function main(): Promise<void> {
  if (!Object.hasOwn(SERVER_MODULES, kind)) throw new Error(`server-child: unknown server kind ${String(kind)}`);
  const { start } = (await import(SERVER_MODULES[kind])) as { start(...args: string[]): Promise<RunningServer> };
  // Arguments after the kind are the server's own (the cluster servers' Redis URL).
  const server = await start(...process.argv.slice(3));
  const { port, path, deflatePath, about } = server;
  send({ type: 'ready', port, path, deflatePath, pid: process.pid, node: process.version, about });
  process.on('message', (command: ServerCommand) => {
    if (command.type === 'cpu') {
      const usage = process.cpuUsage();
      send({ type: 'cpu', micros: usage.user + usage.system, wallNanos: process.hrtime.bigint().toString() });
    } else if (command.type === 'memory') {
      void collectedMemory().then((memory) => send({ type: 'memory', ...memory }));
    } else if (command.type === 'stop') {
      // Stopping must not hang the run: exit regardless once closing had its chance.
      setTimeout(() => process.exit(0), 3_000).unref();
      server.stop().then(
        () => process.exit(0),
        () => process.exit(0),
      );
    }
  });
  // The orchestrator went away without saying stop: do not linger.
  process.on('disconnect', () => process.exit(0));
}

main().catch((error: unknown) => {
  console.error(`server-child ${kind}:`, error);
  process.exit(1);
});
