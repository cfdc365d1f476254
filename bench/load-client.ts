/**
 * Benchmark child process: the `ws`-based echo load client. Runs one closed-loop echo scenario per request
 * from the orchestrator: every connection keeps `inFlight` messages out and sends the next as each echo
 * comes back, checking every echo byte for byte and in order.
 */
import { randomBytes } from 'node:crypto';
import type WebSocket from 'ws';
import { closeSocket, connect, serveOrchestrator } from './client-sockets.js';
import { textMessage } from './echo-payloads.js';
import { EchoRun } from './echo-run.js';
import type { EchoRequest, EchoResult } from './messages.js';

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

async function echo(request: EchoRequest): Promise<EchoResult> {
  const run = new EchoRun(() => allIdle());
  const { errors } = run;
  const fail = (message: string) => run.fail(message);

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
      } else {
        run.echoed(data.length, Number(now - slot.sentAt) / 1e6);
      }
      if (run.keepSending(allIdle())) sendNext(connection);
    });
    socket.on('error', (error) => fail(`connection ${connection.id}: ${error.message}`));
    socket.on('close', (code) => {
      if (run.progress.phase !== 'closing') fail(`connection ${connection.id}: closed by the server (${code}) during the run`);
    });
  }

  if (errors.count === 0) {
    for (const connection of connections) {
      for (let i = 0; i < request.inFlight; i++) sendNext(connection);
    }
    await run.measure(request);
  }

  run.progress.phase = 'closing';
  await Promise.all(connections.map((connection) => closeSocket(connection.socket, `connection ${connection.id}`, errors)));

  return run.result();
}

serveOrchestrator(echo);
