/**
 * Soak server child (see soak.ts): a Nest app on express with an idle route
 * and an echo route, on loopback. It reports its own figures over IPC and,
 * on `close`, runs `app.close()`, reports, drops the IPC channel and is left
 * to exit by itself: a leftover socket or timer would keep it alive, and the
 * orchestrator's exit timeout would catch that.
 */
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ConsoleLogger, Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WebSocketRoute, WebSocketSessions, WebSocketsModule, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { STALL_HEADERS_TIMEOUT_MS } from './soak-hostile.js';

/**
 * Counts the server's warnings by kind instead of printing them: hostile input is meant to get one warning
 * each, and good traffic none. Errors are counted and printed.
 */
class CountingLogger extends ConsoleLogger {
  readonly warnings: Record<string, number> = {};
  errors = 0;

  override warn(message: unknown): void {
    const kind = String(message).split(':', 1)[0];
    this.warnings[kind] = (this.warnings[kind] ?? 0) + 1;
  }

  override error(message: unknown, ...rest: unknown[]): void {
    this.errors++;
    super.error(message, ...rest);
  }
}
const logger = new CountingLogger('soak-server', { logLevels: ['error', 'warn'] });

/** Per route: handlers started, and handlers whose `finally` ran. */
const counters = { started: {} as Record<string, number>, finished: {} as Record<string, number> };

/** Runs a handler's body, counting its start and its `finally`. */
async function counted(route: string, body: () => Promise<void>): Promise<void> {
  counters.started[route] = (counters.started[route] ?? 0) + 1;
  try {
    await body();
  } finally {
    counters.finished[route] = (counters.finished[route] ?? 0) + 1;
  }
}

/** Reads until the peer or the server ends the session. */
async function drain(session: DefaultWebSocketServerSession): Promise<void> {
  for await (const frame of session.incoming) void frame;
}

@Controller()
class SoakController {
  /** Holds the session open without sending anything. */
  @WebSocketRoute('idle')
  idle(session: DefaultWebSocketServerSession): Promise<void> {
    return counted('idle', () => drain(session));
  }

  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession): Promise<void> {
    return counted('echo', async () => {
      for await (const frame of session.incoming) await session.send(frame);
    });
  }

  /** For the stalled-peers scenario: a peer silent this long is cut with 1001. */
  @WebSocketRoute('quiet', { idleTimeout: 2_000 })
  quiet(session: DefaultWebSocketServerSession): Promise<void> {
    return counted('quiet', () => drain(session));
  }

  /** For the stalled-peers scenario: a peer that stops answering pings is cut with 1011. */
  @WebSocketRoute('pinged', { pingInterval: 1_000, timeout: 1_000 })
  pinged(session: DefaultWebSocketServerSession): Promise<void> {
    return counted('pinged', () => drain(session));
  }
}

@Module({
  imports: [WebSocketsModule.forRoot({ maxConnections: 20_000, closeTimeout: 2_000, shutdownTimeout: 5_000 })],
  controllers: [SoakController],
})
class SoakModule {}

export interface SoakStats {
  type: 'stats';
  rss: number;
  heapUsed: number;
  /** `process.getActiveResourcesInfo()` counted by type. */
  handles: Record<string, number>;
  /** Open sessions in the module's WebSocketSessions registry. */
  sessions: number;
  counters: typeof counters;
  /** Event-loop delay since the previous stats, in ms: how long any socket could have waited for the server. */
  loopDelay: { p50: number; p99: number; max: number };
  /** Warning lines by kind (the text before the first colon), and error lines. */
  logs: { warnings: Record<string, number>; errors: number };
}

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

function stats(): SoakStats {
  const delay = { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 };
  loopDelay.reset();
  const handles: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) handles[type] = (handles[type] ?? 0) + 1;
  const memory = process.memoryUsage();
  return { type: 'stats', rss: memory.rss, heapUsed: memory.heapUsed, handles, sessions: registry?.size ?? -1, counters: { ...counters }, loopDelay: delay, logs: { warnings: { ...logger.warnings }, errors: logger.errors } };
}

let registry: WebSocketSessions | undefined;

function send(message: object): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

/** Collects garbage (when run with --expose-gc) and lets pending close callbacks settle first. */
async function settle(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    gc?.();
  }
}

async function main(): Promise<void> {
  const app: INestApplication = await NestFactory.create(SoakModule, { logger });
  // The app's own choice, which Node applies before any upgrade: a request whose headers never end is cut.
  app.getHttpServer().headersTimeout = STALL_HEADERS_TIMEOUT_MS;
  await app.listen(0, '127.0.0.1');
  registry = app.get(WebSocketSessions);
  const port = (app.getHttpServer().address() as AddressInfo).port;
  let closing = false;
  // The orchestrator went away without asking to close: do not linger.
  process.on('disconnect', () => {
    if (!closing) process.exit(2);
  });
  process.on('message', (command: { type: string }) => {
    if (command.type === 'stats') {
      void settle().then(() => send(stats()));
    } else if (command.type === 'close') {
      closing = true;
      const started = Date.now();
      void app.close().then(
        async () => {
          await send({ ...stats(), type: 'closed', closeMs: Date.now() - started });
          // The channel was the last thing the orchestrator held open: from here the process must end by itself.
          process.disconnect();
        },
        async (error: unknown) => {
          await send({ type: 'error', message: `app.close() failed: ${String(error)}` });
          process.exit(1);
        },
      );
    }
  });
  await send({ type: 'ready', port, pid: process.pid });
}

main().catch((error: unknown) => {
  console.error('soak-server:', error);
  process.exit(1);
});
