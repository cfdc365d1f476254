/**
 * Incremental RFC 6455 frame parser. Bytes go in with `push` in chunks of any
 * size; `next` hands out one complete frame at a time, so the caller decides
 * how many it takes (backpressure). Framing rules are enforced here, before
 * any payload is buffered: a declared length above `maxFrameSize` fails at
 * the header and never allocates. With `validateUtf8`, uncompressed text is
 * checked for UTF-8 here, as its bytes arrive: a frame coming in pieces fails
 * (1007) at the read holding the bad byte, not when the frame ends.
 */
import { CloseCode } from './close-reason.js';
import { Frame } from './frame.js';
import { FrameType } from './frame-type.js';
import { applyMask } from './masking.js';
import { WebSocketProtocolError } from './protocol-error.js';
import { isValidUtf8, Utf8Validator } from './utf8-validator.js';

export interface FrameParserOptions {
  /** Largest payload accepted in one frame, in bytes. */
  maxFrameSize: number;
  /** Client-to-server frames must be masked (RFC 6455 §5.1). */
  requireMask: boolean;
  /** RSV bits (0x4 = RSV1, 0x2 = RSV2, 0x1 = RSV3) that negotiated extensions allow. */
  allowedRsv?: number;
  /**
   * Text that is not compressed (RSV1 off on its message's first frame) must be UTF-8 (1007 otherwise),
   * checked as it arrives. Compressed text can only be checked once inflated, by the caller.
   */
  validateUtf8?: boolean;
}

const enum State {
  Header,
  Length16,
  Length64,
  MaskKey,
  Payload,
}

const EMPTY = Buffer.alloc(0);
/** The key being applied: shared, since a payload is unmasked within one synchronous call. */
const KEY = Buffer.alloc(4);

export class FrameParser {
  private readonly chunks: Buffer[] = [];
  /** Where the unread bytes of `chunks[0]` start: reading moves it instead of slicing a new view per field. */
  private offset = 0;
  private buffered = 0;

  private state = State.Header;
  private fin = false;
  private rsv = 0;
  private frameType: FrameType = FrameType.TEXT;
  private masked = false;
  private payloadLength = 0;
  /** The mask key as a number: no buffer per connection (see KEY). */
  private maskKey = 0;
  /** Type of the fragmented message in progress, or undefined between messages. */
  private fragmentedType: FrameType | undefined;
  /** RSV1 was on the first frame of the fragmented message in progress (compressed: not ours to check). */
  private fragmentedCompressed = false;
  /** The current frame continues a fragmented message. */
  private continuation = false;
  /** The current frame's payload is text this parser checks. */
  private checkText = false;
  /** Payload bytes of the current frame already unmasked and checked while the rest was still coming. */
  private checked = 0;
  /** Carries a text message's UTF-8 state across reads and fragments; made when first needed. */
  private utf8: Utf8Validator | undefined;

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
          this.payloadLength = this.contiguous(2).readUInt16BE(this.skip(2));
          this.afterLength();
          break;
        case State.Length64: {
          if (this.buffered < 8) return undefined;
          const bytes = this.contiguous(8);
          const at = this.skip(8);
          const high = bytes.readUInt32BE(at);
          if (high > 0x7fffffff) {
            throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Most significant bit of a 64-bit length is set');
          }
          // Anything at or above 2^53 cannot be represented exactly, and is far above any sane limit.
          this.payloadLength = high >= 0x200000 ? Number.MAX_SAFE_INTEGER : high * 0x100000000 + bytes.readUInt32BE(at + 4);
          this.afterLength();
          break;
        }
        case State.MaskKey: {
          if (this.buffered < 4) return undefined;
          const bytes = this.contiguous(4);
          this.maskKey = bytes.readInt32BE(this.skip(4));
          this.state = State.Payload;
          break;
        }
        case State.Payload: {
          if (this.buffered < this.payloadLength) {
            if (this.checkText && this.buffered > this.checked) this.checkArrived();
            return undefined;
          }
          const payload = this.payloadLength === 0 ? EMPTY : this.consume(this.payloadLength);
          const checked = this.checked;
          const rest = checked === 0 ? payload : payload.subarray(checked);
          if (this.masked) {
            KEY.writeInt32BE(this.maskKey, 0);
            applyMask(rest, KEY, checked);
          }
          this.state = State.Header;
          if (this.checkText) this.checkTextEnd(rest);
          const rsv = this.rsv;
          return Frame.byType(this.frameType, this.fin, payload, (rsv & 4) !== 0, (rsv & 2) !== 0, (rsv & 1) !== 0);
        }
      }
    }
  }

  private readHeader(): void {
    const header = this.contiguous(2);
    const at = this.skip(2);
    const b0 = header[at];
    const b1 = header[at + 1];
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

    this.continuation = opcode === 0;
    if (opcode === 0) {
      if (this.fragmentedType === undefined) {
        throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'Continuation frame without a message to continue');
      }
      this.frameType = this.fragmentedType;
      if (this.fin) this.fragmentedType = undefined;
      // RSV1 on a continuation is the extension's to refuse (1002), not text to check.
      this.checkText =
        this.options.validateUtf8 === true && this.frameType === FrameType.TEXT && !this.fragmentedCompressed && (this.rsv & 4) === 0;
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
        if (!this.fin) {
          this.fragmentedType = type;
          this.fragmentedCompressed = (this.rsv & 4) !== 0;
        }
      }
      this.frameType = type;
      this.checkText = this.options.validateUtf8 === true && type === FrameType.TEXT && (this.rsv & 4) === 0;
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

  /**
   * A text frame still incomplete: the bytes that arrived since the last read (all payload, at the end
   * of `chunks`) are unmasked in place and fed to the validator, so a bad byte fails now.
   */
  private checkArrived(): void {
    const utf8 = (this.utf8 ??= new Utf8Validator());
    if (this.masked) KEY.writeInt32BE(this.maskKey, 0);
    // Walk back from the newest chunk to where the unchecked bytes begin.
    let index = this.chunks.length - 1;
    let unchecked = this.buffered - this.checked;
    while (unchecked > this.chunks[index].length - (index === 0 ? this.offset : 0)) {
      unchecked -= this.chunks[index].length - (index === 0 ? this.offset : 0);
      index--;
    }
    for (; index < this.chunks.length; index++) {
      const chunk = this.chunks[index];
      const piece = chunk.subarray(chunk.length - unchecked);
      if (this.masked) applyMask(piece, KEY, this.checked);
      this.checked += piece.length;
      if (!utf8.update(piece)) this.failText('Text message is not valid UTF-8');
      unchecked = index + 1 < this.chunks.length ? this.chunks[index + 1].length : 0;
    }
  }

  /** The rest of a checked text frame is in (unmasked): one native check for a whole message in one piece. */
  private checkTextEnd(rest: Buffer): void {
    const whole = this.checked === 0 && this.fin && !this.continuation;
    this.checked = 0;
    if (whole) {
      if (!isValidUtf8(rest)) this.failText('Text message is not valid UTF-8');
      return;
    }
    const utf8 = (this.utf8 ??= new Utf8Validator());
    if (!utf8.update(rest)) this.failText('Text message is not valid UTF-8');
    if (this.fin && !utf8.finish()) this.failText('Text message ends inside a UTF-8 sequence');
  }

  private failText(message: string): never {
    this.utf8?.finish();
    throw new WebSocketProtocolError(CloseCode.NOT_CONSISTENT, message);
  }

  /** The first chunk, once it holds the next n buffered bytes (merging chunks when a field spans them). */
  private contiguous(n: number): Buffer {
    if (this.chunks[0].length - this.offset < n) {
      const merged = this.consume(n);
      // Rare (a field split across reads): the partly read chunk is sliced so the merged bytes can go first.
      if (this.offset > 0) this.chunks[0] = this.chunks[0].subarray(this.offset);
      this.chunks.unshift(merged);
      this.offset = 0;
      this.buffered += n;
    }
    return this.chunks[0];
  }

  /** Drops the next n bytes, all in the first chunk; returns where they started in it. */
  private skip(n: number): number {
    const at = this.offset;
    this.buffered -= n;
    this.offset += n;
    if (this.offset === this.chunks[0].length) {
      this.chunks.shift();
      this.offset = 0;
    }
    return at;
  }

  /** Takes n buffered bytes: a view into the first chunk when it holds them all, else one copy. */
  private consume(n: number): Buffer {
    const first = this.chunks[0];
    const start = this.offset;
    if (first.length - start >= n) {
      this.skip(n);
      return start === 0 && first.length === n ? first : first.subarray(start, start + n);
    }
    this.buffered -= n;
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[0];
      const take = Math.min(chunk.length - this.offset, n - written);
      chunk.copy(out, written, this.offset, this.offset + take);
      written += take;
      if (this.offset + take === chunk.length) {
        this.chunks.shift();
        this.offset = 0;
      } else {
        this.offset += take;
      }
    }
    return out;
  }
}
