/**
 * Hostile clients for the soak's mixed scenario (soak.ts): raw TCP connections
 * that break RFC 6455 or the module's limits in one way each, and what the
 * server is allowed to answer. Client frames are built here from RFC 6455
 * §5.2, not with the library.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** How long a hostile client waits for the server's answer before counting "no reaction". */
const REACTION_TIMEOUT_MS = 10_000;
/** How long the client that never reads holds on before leaving. */
const NEVER_READS_HOLD_MS = 3_000;

/** One masked client frame. */
function frame(opcode: number, payload: Uint8Array, { fin = true, rsv = 0, mask = true } = {}): Buffer {
  const length = payload.length;
  const header: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) header.push(maskBit | length);
  else if (length < 65_536) header.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    header.push(maskBit | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(length));
    header.push(...big);
  }
  if (!mask) return Buffer.concat([Buffer.from(header), payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(header), key, body]);
}

/** Header only, claiming `length` bytes (masked): the body never comes. */
function bogusLength(length: bigint): Buffer {
  const head = Buffer.alloc(14);
  head[0] = 0x82;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(length, 2);
  randomBytes(4).copy(head, 10);
  return head;
}

/** Builds the large inputs once: masking them anew for each connection would stall this load generator, not the server. */
function once(build: () => Buffer[]): () => Buffer[] {
  let built: Buffer[] | undefined;
  return () => (built ??= build());
}

/** One kind of hostile client: what it sends, how it behaves, and the answers it may get. */
export interface HostileInput {
  /** The answers RFC 6455 or the README's limits allow the server; anything else fails the soak. */
  answers: string[];
  /** What it sends after a valid handshake, or instead of one with `noHandshake`. */
  bytes: () => Buffer[];
  /** The route it connects to; /echo unless set. */
  path?: string;
  noHandshake?: boolean;
  /** Half-closes TCP once the bytes are sent. */
  endAfterSending?: boolean;
  /** Stops reading once the bytes are sent. */
  pauseAfterSending?: boolean;
  /** How long it waits for an answer before counting "no reaction"; REACTION_TIMEOUT_MS unless set. */
  waitMs?: number;
}

/** Inputs the mixed scenario cycles through, beside the good sessions. */
export const HOSTILE_INPUTS: Record<string, HostileInput> = {
  // Random bytes sometimes begin with a valid masked frame, which is echoed.
  'random-bytes': {
    answers: ['close 1002', 'close 1007', 'close 1008', 'close 1009', 'drop', 'no reaction', 'echo'],
    bytes: () => [randomBytes(64 + Math.floor(Math.random() * 4096))],
  },
  'rsv-bits': {
    answers: ['close 1002'],
    bytes: () => [frame(0x1, Buffer.from('hi'), { rsv: 0b111 })],
  },
  'reserved-opcode': {
    answers: ['close 1002'],
    bytes: () => [frame(0x3, Buffer.from('hi'))],
  },
  unmasked: {
    answers: ['close 1002'],
    bytes: () => [frame(0x1, Buffer.from('hello'), { mask: false })],
  },
  'fragmented-ping': {
    answers: ['close 1002'],
    bytes: () => [frame(0x9, Buffer.from('p'), { fin: false })],
  },
  'ping-126-bytes': {
    answers: ['close 1002'],
    bytes: () => [frame(0x9, Buffer.alloc(126))],
  },
  'lone-continuation': {
    answers: ['close 1002'],
    bytes: () => [frame(0x0, Buffer.from('c'))],
  },
  'invalid-utf8': {
    answers: ['close 1007'],
    bytes: () => [frame(0x1, Buffer.from([0x68, 0xc0, 0xaf, 0x69]))],
  },
  'close-code-1005': {
    answers: ['close 1002'],
    bytes: () => [frame(0x8, Buffer.from([0x03, 0xed]))],
  },
  'close-1-byte': {
    answers: ['close 1002'],
    bytes: () => [frame(0x8, Buffer.from([0x03]))],
  },
  'length-2^63-1': {
    answers: ['close 1009'],
    bytes: () => [bogusLength(2n ** 63n - 1n)],
  },
  'length-2^62': {
    answers: ['close 1009'],
    bytes: () => [bogusLength(2n ** 62n)],
  },
  'bit-flip': {
    answers: ['close 1002', 'close 1009', 'close 1007', 'drop', 'no reaction', 'echo'],
    bytes: () => {
      const good = frame(0x1, Buffer.from('a perfectly fine message'));
      good[Math.floor(Math.random() * 2)] ^= 1 << Math.floor(Math.random() * 8);
      return [good];
    },
  },
  'truncated-then-fin': {
    answers: ['drop', 'close 1002'],
    bytes: () => [frame(0x2, Buffer.alloc(1000)).subarray(0, 50)],
    endAfterSending: true,
  },
  'tiny-fragment-flood': {
    answers: ['close 1008'],
    bytes: once(() => {
      const parts = [frame(0x1, Buffer.from('a'), { fin: false })];
      for (let i = 0; i < 70_000; i++) parts.push(frame(0x0, Buffer.from('a'), { fin: false }));
      return [Buffer.concat(parts)];
    }),
  },
  'garbage-handshake': {
    answers: ['http 400', 'http 4xx', 'drop'],
    bytes: () => [randomBytes(512)],
    noHandshake: true,
  },
  // 8 MiB of messages the echo route answers while this client reads none of it: backpressure, not memory.
  'never-reads': {
    answers: ['no reaction'],
    bytes: once(() => Array.from({ length: 128 }, () => frame(0x2, Buffer.alloc(64 * 1024, 0x61)))),
    pauseAfterSending: true,
    waitMs: NEVER_READS_HOLD_MS,
  },
};

/**
 * Peers that stall instead of misbehaving, for the stalled-peers scenario. The soak server sets
 * `headersTimeout` to STALL_HEADERS_TIMEOUT_MS; Node checks it every 30 s (`connectionsCheckingInterval`).
 */
export const STALL_HEADERS_TIMEOUT_MS = 2_000;
export const STALLED_PEERS: Record<string, HostileInput> = {
  // Half an upgrade request, then nothing: Node's HTTP server owns the socket until the headers end.
  'unfinished-request': {
    answers: ['http 408', 'drop'],
    bytes: () => [Buffer.from('GET /quiet HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n')],
    noHandshake: true,
    waitMs: STALL_HEADERS_TIMEOUT_MS + 35_000,
  },
  // Upgraded, then silent, on a route with idleTimeout.
  'quiet-session': { answers: ['close 1001'], bytes: () => [], path: '/quiet', waitMs: 15_000 },
  // Upgraded, reads, never answers the pinger: what a peer gone without a FIN looks like to the server.
  'no-pongs': { answers: ['close 1011'], bytes: () => [], path: '/pinged', waitMs: 15_000 },
};

/** Runs one hostile connection; resolves with how it ended and when, from the connect. */
export function runHostile(port: number, input: HostileInput): Promise<{ outcome: string; ms: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const payload = input.bytes();
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    let outcome: string | undefined;
    const started = performance.now();
    const end = (result: string) => {
      if (outcome !== undefined) return;
      outcome = result;
      clearTimeout(timer);
      socket.destroy();
      resolve({ outcome: result, ms: performance.now() - started });
    };
    const timer = setTimeout(() => end('no reaction'), input.waitMs ?? REACTION_TIMEOUT_MS);
    const sendPayload = () => {
      for (const part of payload) socket.write(part);
      if (input.endAfterSending) socket.end();
      if (input.pauseAfterSending) socket.pause();
    };
    socket.on('error', () => undefined);
    socket.on('close', () => end(upgraded || input.noHandshake ? 'drop' : 'drop before 101'));
    socket.on('connect', () => {
      if (input.noHandshake) return sendPayload();
      socket.write(
        `GET ${input.path ?? '/echo'} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        if (buffer.length < 12) return;
        const status = Number(buffer.subarray(9, 12).toString());
        if (input.noHandshake) return end(status === 400 || status === 408 ? `http ${status}` : status >= 400 && status < 500 ? 'http 4xx' : `http ${status}`);
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (headEnd < 0) return;
        if (status !== 101) return end(`http ${status} (handshake refused)`);
        upgraded = true;
        buffer = buffer.subarray(headEnd + 4);
        sendPayload();
        if (input.pauseAfterSending) return;
      }
      // Server frames are unmasked; pings and pongs are skipped, a data frame or a Close decides.
      for (;;) {
        if (buffer.length < 2) return;
        const opcode = buffer[0] & 0x0f;
        let length = buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          return end('echo');
        }
        if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) return end('echo');
        if (buffer.length < offset + length) return;
        if (opcode === 0x8) return end(length >= 2 ? `close ${buffer.readUInt16BE(offset)}` : 'close (no code)');
        buffer = buffer.subarray(offset + length);
      }
    });
  });
}
