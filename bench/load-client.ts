/** Benchmark child process: the `ws`-based load client; runs one closed-loop echo scenario per request from the orchestrator. */
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import type { RunRequest, RunResult, WindowEdge } from './messages.js';
import { quantileSorted } from './stats.js';

/** How long in-flight echoes may take to come back once the window closed, before that counts as broken. */
const DRAIN_TIMEOUT_MS = 10_000;
const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 5_000;
/** Errors kept per run: enough to diagnose, without 50 copies of the same ECONNREFUSED. */
const MAX_ERRORS = 10;

/** Keeps the first MAX_ERRORS errors and counts the rest. */
class ErrorList {
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

interface Connection {
  readonly id: number;
  readonly socket: WebSocket;
  seq: number;
  inFlight: boolean;
  sentAt: bigint;
  /** What the echo must equal: the text sent (small), or the connection's payload buffer (large). */
  expectedText: string;
  readonly payload: Buffer | undefined;
}

type Phase = 'warmup' | 'measure' | 'drain' | 'closing';

/** A 32-byte-ish text message naming its connection and sequence number, padded to the requested size. */
function textMessage(size: number, id: number, seq: number): string {
  const tag = `c${id}s${seq}:`;
  return tag.length >= size ? tag.slice(0, size) : tag + 'x'.repeat(size - tag.length);
}

function connect(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // No compression: both servers echo raw frames, and deflate would measure zlib instead.
    const socket = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: CONNECT_TIMEOUT_MS });
    socket.once('open', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function run(request: RunRequest): Promise<RunResult> {
  const errors = new ErrorList();
  const latencies: number[] = [];
  let messages = 0;
  let bytes = 0;
  let phase: Phase = 'warmup';
  let windowStart = 0n;
  let windowEnd = 0n;
  let cpuStart = process.cpuUsage();
  let cpuMicros = 0;
  let onDrained: (() => void) | undefined;

  const sockets = await Promise.allSettled(Array.from({ length: request.connections }, () => connect(request.url)));
  const connections: Connection[] = [];
  sockets.forEach((settled, id) => {
    if (settled.status === 'rejected') {
      errors.add(`connection ${id}: connect failed: ${String(settled.reason)}`);
      return;
    }
    connections.push({
      id,
      socket: settled.value,
      seq: 0,
      inFlight: false,
      sentAt: 0n,
      expectedText: '',
      payload: request.binary ? randomBytes(request.payloadBytes) : undefined,
    });
  });

  const fail = (message: string) => {
    errors.add(message);
    phase = 'drain';
    onDrained?.();
  };

  const sendNext = (connection: Connection) => {
    connection.seq++;
    connection.inFlight = true;
    if (connection.payload !== undefined) {
      // Safe to change: the previous echo came back, so the last send of this buffer has left the client.
      connection.payload.writeUInt32BE(connection.seq >>> 0, 0);
      connection.sentAt = process.hrtime.bigint();
      connection.socket.send(connection.payload, { binary: true });
    } else {
      connection.expectedText = textMessage(request.payloadBytes, connection.id, connection.seq);
      connection.sentAt = process.hrtime.bigint();
      connection.socket.send(connection.expectedText, { binary: false });
    }
  };

  const allIdle = () => connections.every((connection) => !connection.inFlight);

  for (const connection of connections) {
    const { socket } = connection;
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const now = process.hrtime.bigint();
      if (!connection.inFlight) {
        fail(`connection ${connection.id}: message with nothing in flight`);
        return;
      }
      const matches =
        isBinary === request.binary &&
        (connection.payload !== undefined
          ? data.equals(connection.payload)
          : data.length === request.payloadBytes && data.toString('latin1') === connection.expectedText);
      if (!matches) {
        fail(`connection ${connection.id}: echo mismatch at message ${connection.seq} (${data.length} bytes, binary=${isBinary})`);
        return;
      }
      connection.inFlight = false;
      if (phase === 'measure') {
        messages++;
        bytes += data.length;
        latencies.push(Number(now - connection.sentAt) / 1e6);
      }
      if (phase === 'warmup' || phase === 'measure') sendNext(connection);
      else if (phase === 'drain' && allIdle()) onDrained?.();
    });
    socket.on('error', (error) => fail(`connection ${connection.id}: ${error.message}`));
    socket.on('close', (code) => {
      if (phase !== 'closing') fail(`connection ${connection.id}: closed by the server (${code}) during the run`);
    });
  }

  if (errors.count === 0) {
    for (const connection of connections) sendNext(connection);
    await new Promise((resolve) => setTimeout(resolve, request.warmupMs));
    if (phase === 'warmup') {
      phase = 'measure';
      notify({ type: 'window', edge: 'start' });
      cpuStart = process.cpuUsage();
      windowStart = process.hrtime.bigint();
      await new Promise((resolve) => setTimeout(resolve, request.measureMs));
    }
    windowEnd = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpuStart);
    cpuMicros = cpu.user + cpu.system;
    notify({ type: 'window', edge: 'end' });
    if (phase === 'measure') phase = 'drain';
    if (!allIdle() && errors.count === 0) {
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), DRAIN_TIMEOUT_MS);
        onDrained = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      if (!drained) errors.add(`echoes still missing ${DRAIN_TIMEOUT_MS} ms after the window closed`);
    }
  }

  phase = 'closing';
  await Promise.all(connections.map((connection) => closeConnection(connection, errors)));

  latencies.sort((a, b) => a - b);
  const seconds = windowStart === 0n ? 0 : Number(windowEnd - windowStart) / 1e9;
  return {
    type: 'result',
    messages,
    bytes,
    seconds,
    latency: {
      p50: quantileSorted(latencies, 0.5),
      p99: quantileSorted(latencies, 0.99),
      p999: quantileSorted(latencies, 0.999),
      max: latencies.length === 0 ? NaN : latencies[latencies.length - 1],
    },
    clientCpu: seconds === 0 ? 0 : cpuMicros / 1e6 / seconds,
    errors: errors.toArray(),
  };
}

/** Runs the close handshake; a server that does not answer it within the timeout is a broken connection. */
function closeConnection(connection: Connection, errors: ErrorList): Promise<void> {
  const { socket } = connection;
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      errors.add(`connection ${connection.id}: no close handshake within ${CLOSE_TIMEOUT_MS} ms`);
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

function notify(message: WindowEdge | RunResult): void {
  process.send!(message);
}

process.on('message', (request: RunRequest | { type: 'stop' }) => {
  if (request.type === 'stop') {
    process.exit(0);
  }
  run(request).then(notify, (error: unknown) =>
    notify({
      type: 'result',
      messages: 0,
      bytes: 0,
      seconds: 0,
      latency: { p50: NaN, p99: NaN, p999: NaN, max: NaN },
      clientCpu: 0,
      errors: [`load client crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`],
    }),
  );
});
process.on('disconnect', () => process.exit(0));
