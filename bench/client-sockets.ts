/** What the benchmark's two client children share: opening and closing `ws` client sockets, and keeping their errors. */
import WebSocket from 'ws';

const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 5_000;
/** Errors kept per run: enough to diagnose, without 2 000 copies of the same ECONNREFUSED. */
const MAX_ERRORS = 10;

/** Keeps the first MAX_ERRORS errors and counts the rest. */
export class ErrorList {
  readonly kept: string[] = [];
  private dropped = 0;

  add(message: string): void {
    if (this.kept.length < MAX_ERRORS) this.kept.push(message);
    else this.dropped++;
  }

  get count(): number {
    return this.kept.length + this.dropped;
  }

  toArray(): string[] {
    return this.dropped === 0 ? [...this.kept] : [...this.kept, `... and ${this.dropped} more`];
  }
}

/**
 * `deflate`: offer permessage-deflate with ws's defaults; otherwise none, so that every server echoes raw frames.
 * `listen`: attaches listeners before the handshake, for a server that speaks first: a message that came with the
 * 101 response is emitted before the returned promise's callbacks run.
 */
export function connect(url: string, deflate = false, listen?: (socket: WebSocket) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: deflate, handshakeTimeout: CONNECT_TIMEOUT_MS });
    listen?.(socket);
    socket.once('open', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Runs the close handshake; a server that does not answer it within the timeout is a broken connection. */
export function closeSocket(socket: WebSocket, name: string, errors: ErrorList): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      errors.add(`${name}: no close handshake within ${CLOSE_TIMEOUT_MS} ms`);
      socket.terminate();
      resolve();
    }, CLOSE_TIMEOUT_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.close(1000);
  });
}

/** Answers each request from the orchestrator with what `handle` resolves to; stops with it. */
export function serveOrchestrator<Request extends { type: string }>(handle: (request: Request) => Promise<object>): void {
  process.on('message', (request: Request | { type: 'stop' }) => {
    if (request.type === 'stop') process.exit(0);
    handle(request as Request).then(
      (reply) => process.send!(reply),
      (error: unknown) => {
        console.error('benchmark client crashed:', error);
        process.exit(1);
      },
    );
  });
  process.on('disconnect', () => process.exit(0));
}

/**
 * Opens the measured window: tells the orchestrator, so that it samples the server's CPU right then, and
 * returns the function that closes it (telling the orchestrator again) with its length and this process's CPU share.
 */
export function openWindow(): () => { seconds: number; clientCpu: number } {
  process.send!({ type: 'window', edge: 'start' });
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  return () => {
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpuStart);
    process.send!({ type: 'window', edge: 'end' });
    return { seconds, clientCpu: (cpu.user + cpu.system) / 1e6 / seconds };
  };
}

/** A closed-loop client run's phases: connecting, then warm-up, the measured window, the drain of what is still out, closing. */
export type RunPhase = 'connecting' | 'warmup' | 'measure' | 'drain' | 'closing';

/** What `warmUpMeasureDrain` needs of a client run. */
export interface PhasedRun {
  phase: RunPhase;
  /** Nothing is out any more: every message sent was answered (echoed, or delivered to all). */
  idle(): boolean;
  /** Set during the drain: the run calls it when it becomes idle or broke. */
  onDrained?: () => void;
}

/**
 * With the first messages sent: waits out the warm-up, holds the measured window (unless the run broke and
 * went to drain first), then waits for what is still out, at most `drainTimeoutMs`. Returns the window
 * (zeros if it never opened) and whether everything came back.
 */
export async function warmUpMeasureDrain(
  run: PhasedRun,
  times: { warmupMs: number; measureMs: number; drainTimeoutMs: number },
): Promise<{ window: { seconds: number; clientCpu: number }; drained: boolean }> {
  let window = { seconds: 0, clientCpu: 0 };
  run.phase = 'warmup';
  await new Promise((resolve) => setTimeout(resolve, times.warmupMs));
  if (run.phase === 'warmup') {
    run.phase = 'measure';
    const closeWindow = openWindow();
    await new Promise((resolve) => setTimeout(resolve, times.measureMs));
    window = closeWindow();
  }
  if (run.phase === 'measure') run.phase = 'drain';
  if (run.idle()) return { window, drained: true };
  const drained = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), times.drainTimeoutMs);
    run.onDrained = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
  return { window, drained };
}
