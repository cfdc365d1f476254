/**
 * Turns frames into wire bytes (RFC 6455 §5.2). It remembers whether a
 * fragmented message is open, so the fragments after the first go out with
 * the continuation opcode, as the frame model types them by their message.
 */
import { randomFillSync } from 'node:crypto';
import { Frame } from './frame.js';
import { applyMask } from './masking.js';

/** Payloads up to this size are copied behind their header, so a frame is one write. */
const MERGE_LIMIT = 16 * 1024;

export interface FrameSerializerOptions {
  /** Mask outgoing frames: what a client must do; a server never does (RFC 6455 §5.1). */
  masking?: boolean;
}

/** Bytes of the extended payload length field (RFC 6455 §5.2). */
function lengthFieldSize(length: number): number {
  return length < 126 ? 0 : length < 0x10000 ? 2 : 8;
}

function headerSize(length: number, masked: boolean): number {
  return 2 + lengthFieldSize(length) + (masked ? 4 : 0);
}

export function encodeFrameHeader(opcode: number, fin: boolean, rsv: number, length: number, maskKey?: Uint8Array): Buffer {
  const header = Buffer.allocUnsafe(headerSize(length, maskKey !== undefined));
  writeFrameHeader(header, opcode, fin, rsv, length, maskKey);
  return header;
}

/** Writes the header at the start of `header`, which holds at least `headerSize` bytes. */
function writeFrameHeader(header: Buffer, opcode: number, fin: boolean, rsv: number, length: number, maskKey?: Uint8Array): void {
  const lengthBytes = lengthFieldSize(length);
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | opcode;
  const maskBit = maskKey ? 0x80 : 0;
  if (lengthBytes === 0) {
    header[1] = maskBit | length;
  } else if (lengthBytes === 2) {
    header[1] = maskBit | 126;
    header.writeUInt16BE(length, 2);
  } else {
    header[1] = maskBit | 127;
    header.writeUInt32BE(Math.floor(length / 0x100000000), 2);
    header.writeUInt32BE(length >>> 0, 6);
  }
  if (maskKey) header.set(maskKey, 2 + lengthBytes);
}

/** The default options, shared: a serializer only reads them. */
const NO_OPTIONS: FrameSerializerOptions = Object.freeze({});

export class FrameSerializer {
  private fragmentOpen = false;

  constructor(private readonly options: FrameSerializerOptions = NO_OPTIONS) {}

  /**
   * The frame's bytes: one buffer, or a header and the untouched payload for
   * large frames. Throws RangeError for a control frame over 125 bytes (RFC 6455 §5.5).
   */
  serialize(frame: Frame): Buffer[] {
    const length = frame.data.length;
    if (frame.frameType.controlFrame && length > 125) {
      throw new RangeError(`A ${frame.frameType} frame carries at most 125 bytes, got ${length}`);
    }
    let opcode = frame.frameType.opcode;
    if (!frame.frameType.controlFrame) {
      if (this.fragmentOpen) opcode = 0;
      this.fragmentOpen = !frame.fin;
    }
    const rsv = (frame.rsv1 ? 4 : 0) | (frame.rsv2 ? 2 : 0) | (frame.rsv3 ? 1 : 0);
    const maskKey = this.options.masking ? randomFillSync(Buffer.allocUnsafe(4)) : undefined;
    if (length > MERGE_LIMIT) {
      const header = encodeFrameHeader(opcode, frame.fin, rsv, length, maskKey);
      if (maskKey !== undefined) {
        // A client masks a copy: the payload is the caller's.
        const masked = Buffer.from(frame.data);
        applyMask(masked, maskKey);
        return [header, masked];
      }
      return [header, frame.data];
    }
    const size = headerSize(length, maskKey !== undefined);
    const bytes = Buffer.allocUnsafe(size + length);
    writeFrameHeader(bytes, opcode, frame.fin, rsv, length, maskKey);
    frame.data.copy(bytes, size);
    if (maskKey !== undefined) applyMask(bytes.subarray(size), maskKey);
    return [bytes];
  }
}
