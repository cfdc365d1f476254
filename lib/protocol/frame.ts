/**
 * The frame model, as Ktor's `Frame`: `Frame.Text`, `Frame.Binary`,
 * `Frame.Close`, `Frame.Ping`, `Frame.Pong`. A fragment of a fragmented
 * message has `fin` false and the type of its message's first frame.
 */
import { CloseReason, isValidWireCloseCode, MAX_CLOSE_MESSAGE_BYTES } from './close-reason.js';
import { FrameType } from './frame-type.js';

const EMPTY = Buffer.alloc(0);

function toBuffer(data: Uint8Array | string): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export abstract class Frame {
  readonly data: Buffer;

  protected constructor(
    readonly frameType: FrameType,
    readonly fin: boolean,
    data: Uint8Array | string,
    readonly rsv1 = false,
    readonly rsv2 = false,
    readonly rsv3 = false,
  ) {
    this.data = toBuffer(data);
  }

  /** The payload decoded as UTF-8. */
  readText(): string {
    return this.data.toString('utf8');
  }

  /** For a Close frame, its code and message; null for an empty one or another frame type. */
  readReason(): CloseReason | null {
    if (this.frameType !== FrameType.CLOSE || this.data.length < 2) return null;
    return new CloseReason(this.data.readUInt16BE(0), this.data.toString('utf8', 2));
  }

  toString(): string {
    return `Frame ${this.frameType} (fin=${this.fin}, buffer len = ${this.data.length})`;
  }

  /** Builds the frame of the given type; what the parser uses for frames off the wire. */
  static byType(
    frameType: FrameType,
    fin: boolean,
    data: Buffer,
    rsv1 = false,
    rsv2 = false,
    rsv3 = false,
  ): Frame {
    switch (frameType) {
      case FrameType.TEXT:
        return new Frame.Text(fin, data, rsv1, rsv2, rsv3);
      case FrameType.BINARY:
        return new Frame.Binary(fin, data, rsv1, rsv2, rsv3);
      case FrameType.CLOSE:
        return new Frame.Close(data);
      case FrameType.PING:
        return new Frame.Ping(data);
      default:
        return new Frame.Pong(data);
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-namespace
export namespace Frame {
  export class Text extends Frame {
    constructor(text: string);
    constructor(fin: boolean, data: Uint8Array | string, rsv1?: boolean, rsv2?: boolean, rsv3?: boolean);
    constructor(finOrText: boolean | string, data?: Uint8Array | string, rsv1 = false, rsv2 = false, rsv3 = false) {
      if (typeof finOrText === 'string') super(FrameType.TEXT, true, finOrText);
      else super(FrameType.TEXT, finOrText, data ?? EMPTY, rsv1, rsv2, rsv3);
    }
  }

  export class Binary extends Frame {
    constructor(data: Uint8Array);
    constructor(fin: boolean, data: Uint8Array, rsv1?: boolean, rsv2?: boolean, rsv3?: boolean);
    constructor(finOrData: boolean | Uint8Array, data?: Uint8Array, rsv1 = false, rsv2 = false, rsv3 = false) {
      if (typeof finOrData === 'boolean') super(FrameType.BINARY, finOrData, data ?? EMPTY, rsv1, rsv2, rsv3);
      else super(FrameType.BINARY, true, finOrData);
    }
  }

  export class Close extends Frame {
    /** A Close frame with this reason (checked: RangeError if it may not be sent), raw payload bytes, or nothing. */
    constructor(reason?: CloseReason | Uint8Array) {
      super(FrameType.CLOSE, true, reason instanceof CloseReason ? encodeCloseReason(reason) : (reason ?? EMPTY));
    }
  }

  export class Ping extends Frame {
    constructor(data: Uint8Array | string = EMPTY) {
      super(FrameType.PING, true, data);
    }
  }

  export class Pong extends Frame {
    constructor(data: Uint8Array | string = EMPTY) {
      super(FrameType.PONG, true, data);
    }
  }
}

/** What a send of `content` means: a string is one Text frame, bytes one Binary frame, a Frame itself. */
export function frameOf(content: string | Uint8Array | Frame): Frame {
  return typeof content === 'string' ? new Frame.Text(content) : content instanceof Frame ? content : new Frame.Binary(content);
}

/** Throws RangeError for what RFC 6455 §5.5 / §7.4 forbid on the wire: a reserved code, a reason over 123 bytes. */
function encodeCloseReason(reason: CloseReason): Buffer {
  if (!isValidWireCloseCode(reason.code)) throw new RangeError(`Close code ${reason.code} may not be sent`);
  const message = Buffer.from(reason.message, 'utf8');
  if (message.length > MAX_CLOSE_MESSAGE_BYTES) throw new RangeError(`A close reason carries at most ${MAX_CLOSE_MESSAGE_BYTES} bytes, got ${message.length}`);
  const payload = Buffer.allocUnsafe(2 + message.length);
  payload.writeUInt16BE(reason.code, 0);
  message.copy(payload, 2);
  return payload;
}
