/**
 * Benchmark child process: the `ws`-based echo load client. Runs one closed-loop echo scenario per request
 * from the orchestrator: every connection keeps `inFlight` messages out and sends the next as each echo
 * comes back, checking every echo byte for byte and in order.
 */
import { randomBytes } from 'node:crypto';
import type WebSocket from 'ws';
import { closeSocket, connect, ErrorList, serveOrchestrator, warmUpMeasureDrain, type PhasedRun } from './client-sockets.js';
import type { EchoRequest, EchoResult } from './messages.js';
import { quantileSorted } from './stats.js';

/** How long in-flight echoes may take to come back once the window closed, before that counts as broken. */
const DRAIN_TIMEOUT_MS = 10_000;

/** One message position of a connection's window, reused once its echo came back. */
interface Slot {
  sentAt: bigint;
  /** What the echo must equal: the text sent, or the slot's own payload buffer (binary). */
  expected: string | Buffer;
}

interface Connection {
  readonly id: number;
  readonly socket: WebSocket;
  sent: number;
  received: number;
  /** Message n uses slot n % inFlight; it is reused only after message n's echo came back. */
  readonly slots: Slot[];
}

/** A text message naming its connection and sequence number, padded to the requested size. */
/** JSON-like records, compressible about as much as real API payloads (not 'xxxx', which deflate shrinks to nothing). */
const RECORDS = Array.from(
  { length: 4096 },
  (_, i) => `{"id":${i},"user":"user-${(i * 7919) % 1000}","score":${(i * 104729) % 10007},"tags":["t${i % 13}","t${i % 7}"]},`,
).join('');
/** Built once per size: a message is a fresh tag plus this. */
const fillers = new Map<string, string>();

function textMessage(size: number, id: number, seq: number, deflate: boolean): string {
  const tag = `c${id}s${seq}:`;
  if (tag.length >= size) return tag.slice(0, size);
  const key = `${size}:${deflate}`;
  let filler = fillers.get(key);
  if (filler === undefined) {
    filler = (deflate ? RECORDS.repeat(Math.ceil(size / RECORDS.length)) : 'x'.repeat(size)).slice(0, size);
    fillers.set(key, filler);
  }
  return tag + filler.slice(0, size - tag.length);
}

async function run(request: EchoRequest): Promise<EchoResult> {
  const errors = new ErrorList();
  const latencies: number[] = [];
  let messages = 0;
  let bytes = 0;
  let measured = { seconds: 0, clientCpu: 0 };
  // A broken run does not wait for what is still out.
  const progress: PhasedRun = { phase: 'warmup', idle: () => allIdle() || errors.count > 0 };

  const sockets = await Promise.allSettled(Array.from({ length: request.connections }, () => connect(request.url, request.deflate)));
  const connections: Connection[] = [];
  sockets.forEach((settled, id) => {
    if (settled.status === 'rejected') {
      errors.add(`connection ${id}: connect failed: ${String(settled.reason)}`);
      return;
    }
    const slots = Array.from({ length: request.inFlight }, () => ({
      sentAt: 0n,
      expected: request.binary ? randomBytes(request.payloadBytes) : '',
    }));
    connections.push({ id, socket: settled.value, sent: 0, received: 0, slots });
  });

  const fail = (message: string) => {
    errors.add(message);
    progress.phase = 'drain';
    progress.onDrained?.();
  };

  const sendNext = (connection: Connection) => {
    const seq = connection.sent++;
    const slot = connection.slots[seq % request.inFlight];
    if (typeof slot.expected === 'string') {
      slot.expected = textMessage(request.payloadBytes, connection.id, seq, request.deflate);
    } else {
      // Safe to change: this slot's previous echo came back, so its last send has left the client.
      slot.expected.writeUInt32BE(seq >>> 0, 0);
    }
    slot.sentAt = process.hrtime.bigint();
    connection.socket.send(slot.expected, { binary: request.binary });
  };

  const allIdle = () => connections.every((connection) => connection.sent === connection.received);

  for (const connection of connections) {
    const { socket } = connection;
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const now = process.hrtime.bigint();
      if (connection.received === connection.sent) {
        fail(`connection ${connection.id}: message with nothing in flight`);
        return;
      }
      // A wrong echo still answers its message: the ones behind it are checked against their own.
      const seq = connection.received++;
      const slot = connection.slots[seq % request.inFlight];
      const matches =
        isBinary === request.binary &&
        (typeof slot.expected === 'string'
          ? data.length === request.payloadBytes && data.toString('latin1') === slot.expected
          : data.equals(slot.expected));
      if (!matches) {
        fail(`connection ${connection.id}: echo mismatch at message ${seq} (${data.length} bytes, binary=${isBinary})`);
      } else if (progress.phase === 'measure') {
        messages++;
        bytes += data.length;
        latencies.push(Number(now - slot.sentAt) / 1e6);
      }
      if (progress.phase === 'warmup' || progress.phase === 'measure') sendNext(connection);
      else if (progress.phase === 'drain' && allIdle()) progress.onDrained?.();
    });
    socket.on('error', (error) => fail(`connection ${connection.id}: ${error.message}`));
    socket.on('close', (code) => {
      if (progress.phase !== 'closing') fail(`connection ${connection.id}: closed by the server (${code}) during the run`);
    });
  }

  if (errors.count === 0) {
    for (const connection of connections) {
      for (let i = 0; i < request.inFlight; i++) sendNext(connection);
    }
    const { window, drained } = await warmUpMeasureDrain(progress, { ...request, drainTimeoutMs: DRAIN_TIMEOUT_MS });
    if (!drained) errors.add(`echoes still missing ${DRAIN_TIMEOUT_MS} ms after the window closed`);
    measured = window;
  }

  progress.phase = 'closing';
  await Promise.all(connections.map((connection) => closeSocket(connection.socket, `connection ${connection.id}`, errors)));

  latencies.sort((a, b) => a - b);
  return {
    type: 'result',
    messages,
    bytes,
    ...measured,
    latency: {
      p50: quantileSorted(latencies, 0.5),
      p99: quantileSorted(latencies, 0.99),
      p999: quantileSorted(latencies, 0.999),
      max: latencies.length === 0 ? NaN : latencies[latencies.length - 1],
    },
    errors: errors.toArray(),
  };
}

serveOrchestrator(run);
