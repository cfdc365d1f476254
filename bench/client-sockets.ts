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

/** `deflate`: offer permessage-deflate with ws's defaults; otherwise none, so that every server echoes raw frames. */
export function connect(url: string, deflate = false): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: deflate, handshakeTimeout: CONNECT_TIMEOUT_MS });
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
