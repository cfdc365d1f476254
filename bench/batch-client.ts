/**
 * Benchmark child process: the raw TCP echo load client that writes many frames at once. Each connection runs
 * the WebSocket handshake itself, then sends its messages in batches: one socket.write of `framesPerWrite`
 * masked text frames, and the next batch once every echo of the batch came back, each checked byte for byte
 * and in order. (load-client.ts's `ws` client writes each frame by itself.) Text only, no extensions.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { connect as connectTcp, type Socket } from 'node:net';
import { ErrorList, serveOrchestrator } from './client-sockets.js';
import { textMessage } from './echo-payloads.js';
import { EchoRun } from './echo-run.js';
import type { EchoRequest, EchoResult } from './messages.js';

const CONNECT_TIMEOUT_MS = 5_000;
const CLOSE_TIMEOUT_MS = 5_000;
/** RFC 6455 section 1.3: what the server appends to the key before hashing it for Sec-WebSocket-Accept. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;

interface Connection {
  readonly id: number;
  readonly socket: Socket;
  /** Sequence number of the next message to send. */
  sent: number;
  /** The current batch's messages, and how many of their echoes came back. */
  batch: Buffer[];
  echoed: number;
  batchSentAt: bigint;
  /** Bytes read that do not yet make a whole frame. */
  pending: Buffer;
  /** The server's close frame came (during closing): end the socket. */
  closing: boolean;
}

/** A masked client frame header: FIN + opcode, the length (7, 16 or 64 bits), then the 4-byte masking key. */
function headerLength(payloadLength: number): number {
  return payloadLength < 126 ? 6 : payloadLength < 65_536 ? 8 : 14;
}

/** Writes one masked frame into `out` at `offset` with a fresh key taken from `keys`; returns the offset after it. */
function writeFrame(out: Buffer, offset: number, opcode: number, payload: Buffer, keys: Buffer, keyOffset: number): number {
  const length = payload.length;
  out[offset++] = 0x80 | opcode;
  if (length < 126) {
    out[offset++] = 0x80 | length;
  } else if (length < 65_536) {
    out[offset++] = 0x80 | 126;
    offset = out.writeUInt16BE(length, offset);
  } else {
    out[offset++] = 0x80 | 127;
    offset = out.writeBigUInt64BE(BigInt(length), offset);
  }
  keys.copy(out, offset, keyOffset, keyOffset + 4);
  offset += 4;
  for (let i = 0; i < length; i++) out[offset + i] = payload[i] ^ keys[keyOffset + (i & 3)];
  return offset + length;
}

/** All of `messages` as text frames in one buffer: one write. */
function encodeBatch(messages: Buffer[]): Buffer {
  const out = Buffer.allocUnsafe(messages.reduce((sum, message) => sum + headerLength(message.length) + message.length, 0));
  const keys = randomFillSync(Buffer.allocUnsafe(4 * messages.length));
  let offset = 0;
  messages.forEach((message, index) => (offset = writeFrame(out, offset, OPCODE_TEXT, message, keys, 4 * index)));
  return out;
}

/** Opens a TCP connection and runs the opening handshake; resolves with the socket and the bytes that came after the 101. */
function handshake(url: URL): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
    const socket = connectTcp({ host: url.hostname, port: Number(url.port), noDelay: true });
    let response = Buffer.alloc(0);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`no handshake response within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    socket.once('error', fail);
    socket.on('data', function onData(chunk: Buffer) {
      response = Buffer.concat([response, chunk]);
      const end = response.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('error', fail);
      clearTimeout(timer);
      const head = response.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.1 101 /.test(head) || !head.toLowerCase().includes(`\r\nsec-websocket-accept: ${accept.toLowerCase()}`)) {
        socket.destroy();
        reject(new Error(`handshake refused or wrong: ${head.split('\r\n', 1)[0]}`));
        return;
      }
      resolve({ socket, rest: response.subarray(end + 4) });
    });
    socket.write(
      `GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

async function echo(request: EchoRequest): Promise<EchoResult> {
  if (request.binary || request.deflate) throw new Error('batch-client sends uncompressed text only');
  const run = new EchoRun(() => allIdle());
  const { errors, progress } = run;
  const fail = (message: string) => run.fail(message);
  const url = new URL(request.url);

  const opened = await Promise.allSettled(Array.from({ length: request.connections }, () => handshake(url)));
  const connections: Connection[] = [];
  opened.forEach((settled, id) => {
    if (settled.status === 'rejected') errors.add(`connection ${id}: connect failed: ${String(settled.reason)}`);
    else {
      const { socket, rest } = settled.value;
      connections.push({ id, socket, sent: 0, batch: [], echoed: 0, batchSentAt: 0n, pending: rest, closing: false });
    }
  });
  const allIdle = () => connections.every((connection) => connection.echoed === connection.batch.length);

  const sendBatch = (connection: Connection) => {
    connection.batch = Array.from({ length: request.framesPerWrite }, () =>
      Buffer.from(textMessage(request.payloadBytes, connection.id, connection.sent++, false), 'latin1'),
    );
    connection.echoed = 0;
    connection.batchSentAt = process.hrtime.bigint();
    connection.socket.write(encodeBatch(connection.batch));
  };

  const onMessage = (connection: Connection, payload: Buffer, now: bigint) => {
    if (connection.echoed === connection.batch.length) {
      fail(`connection ${connection.id}: message with nothing in flight`);
      return;
    }
    const expected = connection.batch[connection.echoed++];
    if (!payload.equals(expected)) {
      fail(`connection ${connection.id}: echo mismatch (${payload.length} bytes)`);
    } else {
      run.echoed(payload.length, Number(now - connection.batchSentAt) / 1e6);
    }
    if (connection.echoed === connection.batch.length && run.keepSending(allIdle())) sendBatch(connection);
  };

  /** Server frames are unmasked; a server that masks, fragments or sends anything but text and close is broken here. */
  const onFrames = (connection: Connection, chunk: Buffer) => {
    const now = process.hrtime.bigint();
    const data = connection.pending.length === 0 ? chunk : Buffer.concat([connection.pending, chunk]);
    let offset = 0;
    while (data.length - offset >= 2) {
      const first = data[offset];
      const second = data[offset + 1];
      let length = second & 0x7f;
      let header = 2;
      if (length === 126) {
        if (data.length - offset < 4) break;
        length = data.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (data.length - offset < 10) break;
        length = Number(data.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (data.length - offset < header + length) break;
      const payload = data.subarray(offset + header, offset + header + length);
      offset += header + length;
      const opcode = first & 0x0f;
      if ((second & 0x80) !== 0 || (first & 0x80) === 0 || (opcode !== OPCODE_TEXT && opcode !== OPCODE_CLOSE)) {
        fail(`connection ${connection.id}: unexpected frame from the server (bytes ${first.toString(16)} ${second.toString(16)})`);
      } else if (opcode === OPCODE_CLOSE) {
        if (progress.phase !== 'closing') fail(`connection ${connection.id}: closed by the server during the run`);
        connection.closing = true;
        connection.socket.end();
      } else {
        onMessage(connection, payload, now);
      }
    }
    // Copied: the rest of a read is kept until the frame is whole, and the read buffer is not ours to hold.
    connection.pending = offset === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(offset));
  };

  for (const connection of connections) {
    connection.socket.on('data', (chunk: Buffer) => onFrames(connection, chunk));
    connection.socket.on('error', (error) => fail(`connection ${connection.id}: ${error.message}`));
    connection.socket.on('close', () => {
      if (progress.phase !== 'closing') fail(`connection ${connection.id}: connection closed during the run`);
    });
  }

  if (errors.count === 0) {
    for (const connection of connections) sendBatch(connection);
    await run.measure(request);
  }

  progress.phase = 'closing';
  await Promise.all(connections.map((connection) => closeConnection(connection, errors)));

  return run.result();
}

/** Sends a close frame (1000) and waits for the server to close the TCP connection after its own close frame. */
function closeConnection(connection: Connection, errors: ErrorList): Promise<void> {
  const { socket } = connection;
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      errors.add(`connection ${connection.id}: no close handshake within ${CLOSE_TIMEOUT_MS} ms`);
      socket.destroy();
      resolve();
    }, CLOSE_TIMEOUT_MS);
    socket.once('close', () => {
      clearTimeout(timer);
      if (!connection.closing) errors.add(`connection ${connection.id}: closed without the server's close frame`);
      resolve();
    });
    const code = Buffer.alloc(2);
    code.writeUInt16BE(1000);
    const frame = Buffer.allocUnsafe(headerLength(2) + 2);
    writeFrame(frame, 0, OPCODE_CLOSE, code, randomBytes(4), 0);
    socket.write(frame);
  });
}

serveOrchestrator(echo);
