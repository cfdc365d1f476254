/**
 * Test-only helpers for the protocol unit tests. Everything here is written
 * from RFC 6455 §5.2/§5.3 directly and shares no code with lib/protocol, so
 * it can serve as an independent source of expected bytes.
 */
import type { Frame } from '../../lib/protocol/frame.js';
import type { FrameParser } from '../../lib/protocol/frame-parser.js';
import { WebSocketProtocolError } from '../../lib/protocol/protocol-error.js';

/** The naive RFC 6455 §5.3 masking loop: octet i XOR key[(i + offset) mod 4], on a copy. */
export function naiveMask(data: Uint8Array, key: ArrayLike<number>, offset = 0): Buffer {
  const out = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ key[(i + offset) % 4];
  return out;
}

export interface WireFrameSpec {
  fin?: boolean;
  rsv?: number; // 3 bits: 4 = RSV1, 2 = RSV2, 1 = RSV3
  opcode: number;
  payload?: Uint8Array | string;
  /** 4-byte masking key; omitted = unmasked. */
  mask?: ArrayLike<number>;
}

/** Builds a frame's wire bytes by the §5.2 diagram, one field at a time. */
export function wireFrame(spec: WireFrameSpec): Buffer {
  const payload =
    spec.payload === undefined
      ? Buffer.alloc(0)
      : typeof spec.payload === 'string'
        ? Buffer.from(spec.payload, 'utf8')
        : Buffer.from(spec.payload);
  const fin = spec.fin ?? true;
  const bytes: number[] = [];
  bytes.push((fin ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode);
  const maskBit = spec.mask ? 0x80 : 0;
  const n = payload.length;
  if (n <= 125) {
    bytes.push(maskBit | n);
  } else if (n <= 0xffff) {
    bytes.push(maskBit | 126, (n >> 8) & 0xff, n & 0xff);
  } else {
    bytes.push(maskBit | 127);
    // 64-bit big-endian; test payloads stay far below 2^32.
    bytes.push(0, 0, 0, 0, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
  }
  if (spec.mask) {
    for (let i = 0; i < 4; i++) bytes.push(spec.mask[i]);
    return Buffer.concat([Buffer.from(bytes), naiveMask(payload, spec.mask)]);
  }
  return Buffer.concat([Buffer.from(bytes), payload]);
}

/** Pulls every complete frame out of the parser (`next()` until undefined). */
export function drain(parser: FrameParser, into: Frame[] = []): Frame[] {
  for (let frame = parser.next(); frame !== undefined; frame = parser.next()) into.push(frame);
  return into;
}

/** Pushes each chunk (as a private copy: the parser unmasks in place) and drains after each push. */
export function parseChunks(parser: FrameParser, chunks: Uint8Array[]): Frame[] {
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    parser.push(Buffer.from(chunk));
    drain(parser, frames);
  }
  return frames;
}

/** A plain, comparable view of a frame. */
export interface FrameView {
  type: string;
  opcode: number;
  fin: boolean;
  rsv: [boolean, boolean, boolean];
  hex: string;
}

export function view(frame: Frame): FrameView {
  return {
    type: frame.frameType.name,
    opcode: frame.frameType.opcode,
    fin: frame.fin,
    rsv: [frame.rsv1, frame.rsv2, frame.rsv3],
    hex: Buffer.from(frame.data).toString('hex'),
  };
}

/** Deterministic PRNG (mulberry32) so random tests are reproducible. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomInt(rand: () => number, below: number): number {
  return Math.floor(rand() * below);
}

export function randomBytes(rand: () => number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) {
    const word = Math.floor(rand() * 4294967296);
    for (let j = 0; j < 4 && i + j < length; j++) out[i + j] = (word >>> (8 * j)) & 0xff;
  }
  return out;
}

/** Runs `fn` and returns what it threw (undefined when it did not throw). */
export function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

/** Asserts `fn` throws a WebSocketProtocolError carrying this close code. */
export function expectProtocolError(fn: () => unknown, closeCode: number): void {
  const error = catchError(fn);
  expect(error).toBeInstanceOf(WebSocketProtocolError);
  expect((error as WebSocketProtocolError).closeCode).toBe(closeCode);
}
