/**
 * Incremental RFC 6455 frame parser. Bytes go in with `push` in chunks of any
 * size; `next` hands out one complete frame at a time, so the caller decides
 * how many it takes (backpressure). Framing rules are enforced here, before
 * any payload is buffered: a declared length above `maxFrameSize` fails at
 * the header and never allocates.
 */
import { CloseCode } from './close-reason.js';
import { Frame } from './frame.js';
import { FrameType } from './frame-type.js';
import { applyMask } from './masking.js';
import { WebSocketProtocolError } from './protocol-error.js';

export interface FrameParserOptions {
  /** Largest payload accepted in one frame, in bytes. */
  maxFrameSize: number;
  /** Client-to-server frames must be masked (RFC 6455 §5.1). */
  requireMask: boolean;
  /** RSV bits (0x4 = RSV1, 0x2 = RSV2, 0x1 = RSV3) that negotiated extensions allow. */
  allowedRsv?: number;
}

const enum State {
  Header,
  Length16,
  Length64,
  MaskKey,
  Payload,
}

const EMPTY = Buffer.alloc(0);

export class FrameParser {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;

  private state = State.Header;
  private fin = false;
  private rsv = 0;
  private frameType: FrameType = FrameType.TEXT;
  private masked = false;
  private payloadLength = 0;
  private maskKey = Buffer.alloc(4);
  /** Type of the fragmented message in progress, or undefined between messages. */
  private fragmentedType: FrameType | undefined;

  constructor(private readonly options: FrameParserOptions) {}

  /** Bytes received but not yet handed out as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or undefined until more bytes arrive. Throws WebSocketProtocolError. */
  next(): Frame | undefined {
    for (;;) {
      switch (this.state) {
        case State.Header:
          if (this.buffered < 2) return undefined;
          this.readHeader();
          break;
        case State.Length16:
          if (this.buffered < 2) return undefined;
          this.payloadLength = this.consume(2).readUInt16BE(0);
          this.afterLength();
          break;
        case State.Length64: {
          if (this.buffered < 8) return undefined;
          const bytes = this.consume(8);
          const high = bytes.readUInt32BE(0);
          if (high > 0x7fffffff) {
            throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Most significant bit of a 64-bit length is set');
          }
          // Anything at or above 2^53 cannot be represented exactly, and is far above any sane limit.
          this.payloadLength = high >= 0x200000 ? Number.MAX_SAFE_INTEGER : high * 0x100000000 + bytes.readUInt32BE(4);
          this.afterLength();
          break;
        }
        case State.MaskKey:
          if (this.buffered < 4) return undefined;
          this.consume(4).copy(this.maskKey);
          this.state = State.Payload;
          break;
        case State.Payload: {
          if (this.buffered < this.payloadLength) return undefined;
          const payload = this.payloadLength === 0 ? EMPTY : this.consume(this.payloadLength);
          if (this.masked) applyMask(payload, this.maskKey);
          this.state = State.Header;
          const rsv = this.rsv;
          return Frame.byType(this.frameType, this.fin, payload, (rsv & 4) !== 0, (rsv & 2) !== 0, (rsv & 1) !== 0);
        }
      }
    }
  }

  private readHeader(): void {
    const header = this.consume(2);
    const b0 = header[0];
    const b1 = header[1];
    this.fin = (b0 & 0x80) !== 0;
    this.rsv = (b0 >> 4) & 0x7;
    this.masked = (b1 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const length7 = b1 & 0x7f;

    if ((this.rsv & ~(this.options.allowedRsv ?? 0)) !== 0) {
      throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Reserved bits set without a negotiated extension');
    }
    if (this.options.requireMask && !this.masked) {
      throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Client frame is not masked');
    }

    if (opcode === 0) {
      if (this.fragmentedType === undefined) {
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Continuation frame without a message to continue');
      }
      this.frameType = this.fragmentedType;
      if (this.fin) this.fragmentedType = undefined;
    } else {
      const type = FrameType.get(opcode);
      if (type === undefined) {
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, `Reserved opcode ${opcode}`);
      }
      if (type.controlFrame) {
        if (!this.fin) throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Fragmented control frame');
        if (length7 > 125) throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Control frame payload over 125 bytes');
        // No extension gives control frames RSV bits (RFC 7692 §6 forbids RSV1 there); Close, Ping and Pong carry none.
        if (this.rsv !== 0) throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'RSV bits set on a control frame');
      } else {
        if (this.fragmentedType !== undefined) {
          throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'New data frame before the fragmented message ended');
        }
        if (!this.fin) this.fragmentedType = type;
      }
      this.frameType = type;
    }

    if (length7 === 126) {
      this.state = State.Length16;
    } else if (length7 === 127) {
      this.state = State.Length64;
    } else {
      this.payloadLength = length7;
      this.afterLength();
    }
  }

  private afterLength(): void {
    if (this.payloadLength > this.options.maxFrameSize) {
      throw new WebSocketProtocolError(
        CloseCode.TOO_BIG,
        `Frame of ${this.payloadLength} bytes exceeds maxFrameSize ${this.options.maxFrameSize}`,
      );
    }
    this.state = this.masked ? State.MaskKey : State.Payload;
  }

  /** Takes n buffered bytes: a view into the first chunk when it holds them all, else one copy. */
  private consume(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[0];
      const take = Math.min(chunk.length, n - written);
      chunk.copy(out, written, 0, take);
      written += take;
      if (take === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(take);
    }
    return out;
  }
}
