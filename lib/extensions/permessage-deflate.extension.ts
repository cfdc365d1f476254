/**
 * One session's permessage-deflate (RFC 7692 §7): compresses outgoing
 * messages and inflates incoming ones on `node:zlib` streams created on
 * first use (an idle session holds no zlib memory). RSV1 marks a message's
 * first frame as compressed; the session calls in frame order, one at a
 * time, so one pair of streams keeps the LZ77 context across messages.
 * Inflated data is counted as it comes out of zlib: past the limit the
 * message fails with 1009 before it is all inflated (zip bombs).
 */
import { constants, createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { CloseCode } from '../protocol/close-reason.js';
import { Frame } from '../protocol/frame.js';
import { WebSocketProtocolError } from '../protocol/protocol-error.js';
import type {
  WebSocketExtension,
  WebSocketExtensionHeader,
  WebSocketExtensionLimits,
} from '../protocol/websocket-extension.js';
import type { PerMessageDeflateFactory } from './permessage-deflate.factory.js';
import { zlibLimiter } from './zlib-limiter.js';

/** What the server agreed to in the handshake. */
export interface DeflateParameters {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverWindowBits: number;
  clientWindowBits: number;
  /** Whether the response names the window bits (§7.1.2). */
  answerServerWindowBits: boolean;
  answerClientWindowBits: boolean;
}

/** What a sync flush ends with; the sender drops it and the receiver puts it back (§7.2.1, §7.2.2). */
const TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const ignore = () => undefined;

class OutputLimitError extends Error {}

/** What zlib work finds once the connection ended (and dispose() closed the streams under it). */
const closedError = () => new WebSocketProtocolError(CloseCode.GOING_AWAY, 'Connection closed');

/**
 * Writes `input` to a zlib stream, sync-flushes it, and resolves with what
 * came out. Rejects with OutputLimitError as soon as the output passes
 * `maxOutput` bytes, or with zlib's error; either way the stream is unusable.
 */
function runZlib(stream: InflateRaw | DeflateRaw, input: readonly Buffer[], maxOutput: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      stream.off('data', onData);
      stream.off('error', settle);
      if (error === undefined) resolve(Buffer.concat(chunks, size));
      else reject(error);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxOutput) settle(new OutputLimitError());
      else chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.on('error', settle);
    for (const part of input) stream.write(part);
    // A stream destroyed meanwhile (the connection ended) reports it here.
    stream.flush(constants.Z_SYNC_FLUSH, (error?: Error | null) => settle(error ?? undefined));
  });
}

export class PerMessageDeflateExtension implements WebSocketExtension {
  private inflater: InflateRaw | undefined;
  private deflater: DeflateRaw | undefined;
  /** An incoming message is open (its first frame came, its last not yet) and whether it is compressed. */
  private incomingOpen = false;
  private incomingCompressed = false;
  /** Bytes inflated so far for the open incoming message. */
  private incomingSize = 0;
  private outgoingOpen = false;
  private outgoingCompressed = false;
  private disposed = false;

  constructor(
    readonly factory: PerMessageDeflateFactory,
    readonly response: WebSocketExtensionHeader,
    private readonly parameters: DeflateParameters,
    private readonly limits: WebSocketExtensionLimits,
  ) {}

  processIncomingFrame(frame: Frame): Frame | Promise<Frame> {
    if (frame.frameType.controlFrame) return frame;
    if (!this.incomingOpen) {
      this.incomingCompressed = frame.rsv1;
      this.incomingSize = 0;
    } else if (frame.rsv1) {
      throw new WebSocketProtocolError(CloseCode.PROTOCOL_ERROR, 'RSV1 set on a continuation frame');
    }
    this.incomingOpen = !frame.fin;
    if (!this.incomingCompressed) return frame;
    return this.inflate(frame.data, frame.fin).then((data) => Frame.byType(frame.frameType, frame.fin, data, false, frame.rsv2, frame.rsv3));
  }

  processOutgoingFrame(frame: Frame): Frame | Promise<Frame> {
    if (frame.frameType.controlFrame) return frame;
    const first = !this.outgoingOpen;
    if (first) this.outgoingCompressed = this.shouldCompress(frame);
    this.outgoingOpen = !frame.fin;
    if (!this.outgoingCompressed) return frame;
    return this.deflate(frame.data, frame.fin).then((data) => Frame.byType(frame.frameType, frame.fin, data, first, frame.rsv2, frame.rsv3));
  }

  dispose(): void {
    this.disposed = true;
    this.inflater?.close();
    this.deflater?.close();
    this.inflater = undefined;
    this.deflater = undefined;
  }

  private shouldCompress(frame: Frame): boolean {
    const { threshold, compressIf } = this.factory.config;
    return frame.data.length >= threshold && (compressIf === undefined || compressIf(frame));
  }

  private inflate(data: Buffer, fin: boolean): Promise<Buffer> {
    return zlibLimiter.run(async () => {
      if (this.disposed) throw closedError();
      const inflater = (this.inflater ??= this.newInflater());
      try {
        const room = this.limits.maxIncomingSize - this.incomingSize;
        const out = await runZlib(inflater, fin ? [data, TAIL] : [data], room);
        if (this.disposed) throw closedError();
        this.incomingSize += out.length;
        if (inflater.readableEnded) this.replaceEndedInflater(out);
        else if (fin && this.parameters.clientNoContextTakeover) inflater.reset();
        return out;
      } catch (error) {
        if (this.disposed) throw closedError();
        // A stream stopped halfway cannot be reused: the next message would inflate against a broken state.
        this.inflater = undefined;
        inflater.close();
        if (error instanceof OutputLimitError) {
          throw new WebSocketProtocolError(CloseCode.TOO_BIG, `Inflated message exceeds ${this.limits.maxIncomingSize} bytes`);
        }
        throw new WebSocketProtocolError(CloseCode.NOT_CONSISTENT, `Invalid compressed data: ${(error as Error).message}`);
      }
    });
  }

  private deflate(data: Buffer, fin: boolean): Promise<Buffer> {
    return zlibLimiter.run(async () => {
      if (this.disposed) throw closedError();
      const deflater = (this.deflater ??= this.newDeflater());
      try {
        const out = await runZlib(deflater, [data], Number.POSITIVE_INFINITY);
        if (this.disposed) throw closedError();
        if (fin && this.parameters.serverNoContextTakeover) deflater.reset();
        return fin ? out.subarray(0, out.length - TAIL.length) : out;
      } catch (error) {
        if (this.disposed) throw closedError();
        this.deflater = undefined;
        deflater.close();
        throw error;
      }
    });
  }

  /**
   * A message may end its DEFLATE stream with a BFINAL block (§7.2.3.4); zlib then takes no more
   * input, so the next message needs a new stream. With context takeover it starts from this
   * message's output as its window; history older than that message is gone, and a sender that
   * reaches back to it fails with 1007 rather than inflating wrongly.
   */
  private replaceEndedInflater(lastOutput: Buffer): void {
    this.inflater?.close();
    const windowSize = 1 << this.parameters.clientWindowBits;
    const dictionary = this.parameters.clientNoContextTakeover ? undefined : lastOutput.subarray(Math.max(0, lastOutput.length - windowSize));
    this.inflater = this.newInflater(dictionary !== undefined && dictionary.length > 0 ? dictionary : undefined);
  }

  private newInflater(dictionary?: Buffer): InflateRaw {
    const inflater = createInflateRaw({ windowBits: this.parameters.clientWindowBits, dictionary });
    // Errors reach the job that caused them; this keeps a late one (after close) from being unhandled.
    inflater.on('error', ignore);
    return inflater;
  }

  private newDeflater(): DeflateRaw {
    const deflater = createDeflateRaw({ level: this.factory.config.compressionLevel, windowBits: this.parameters.serverWindowBits });
    deflater.on('error', ignore);
    return deflater;
  }
}
