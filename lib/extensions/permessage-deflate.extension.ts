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

/**
 * Each write is compressed or inflated and flushed in one go: one trip to the thread pool per write
 * instead of a write and a separate flush (`ws` does both, which costs it a round trip per message).
 */
const SYNC_FLUSH_EVERY_WRITE = { flush: constants.Z_SYNC_FLUSH } as const;

/**
 * zlib's output chunk for a session whose messages inflate to LARGE_MESSAGE or more. A message of up
 * to about half of it mostly comes out in one piece: one trip to the thread pool and no copy, where
 * zlib's default 16 KiB chunk takes a trip and a copy per 16 KiB. The others keep the default: a
 * stream holds its current chunk between messages.
 */
const LARGE_OUTPUT_CHUNK = 128 * 1024;
/**
 * The smallest inflated message that moves a session to LARGE_OUTPUT_CHUNK: zlib's default chunk size
 * (16 KiB) twice over, whatever the window, so a client's small window (down to 256 bytes) does not move
 * every session. Being a window or more, such a message always holds the whole window the new inflater needs.
 */
const LARGE_MESSAGE = 32 * 1024;

/**
 * A view keeps the whole buffer under it alive: an incoming message, which a user may keep, is handed
 * on as a view of zlib's output only when that buffer is at most this many times its size.
 */
const MAX_VIEW_OVERHEAD = 4;

class OutputLimitError extends Error {}

/** What zlib work finds once the connection ended (and dispose() closed the streams under it). */
const closedError = () => new WebSocketProtocolError(CloseCode.GOING_AWAY, 'Connection closed');

/** The job a zlib stream is running, kept on the stream: its listeners are added once, not per message. */
interface ZlibJob {
  readonly chunks: Buffer[];
  size: number;
  readonly maxOutput: number;
  /** How many times the output's size the buffer under it may be, for a view instead of a copy (see runZlib). */
  readonly maxViewOverhead: number;
  readonly resolve: (output: Buffer) => void;
  readonly reject: (error: Error) => void;
}
const JOB = Symbol('zlibJob');
type ZlibStream = (InflateRaw | DeflateRaw) & { [JOB]?: ZlibJob };

function settleJob(stream: ZlibStream, job: ZlibJob, error?: Error): void {
  if (stream[JOB] !== job) return;
  stream[JOB] = undefined;
  const [first] = job.chunks;
  if (error !== undefined) job.reject(error);
  else if (job.chunks.length === 1 && first.buffer.byteLength <= first.length * job.maxViewOverhead) job.resolve(first);
  else job.resolve(Buffer.concat(job.chunks, job.size));
}

function onZlibData(this: ZlibStream, chunk: Buffer): void {
  const job = this[JOB];
  if (job === undefined) return;
  job.size += chunk.length;
  if (job.size > job.maxOutput) settleJob(this, job, new OutputLimitError());
  else job.chunks.push(chunk);
}

function onZlibError(this: ZlibStream, error: Error): void {
  const job = this[JOB];
  if (job !== undefined) settleJob(this, job, error);
}

/** Listeners for runZlib, added once per stream; errors reach the job that caused them, a late one (after close) is ignored. */
function listen<S extends InflateRaw | DeflateRaw>(stream: S): S {
  stream.on('data', onZlibData);
  stream.on('error', onZlibError);
  return stream;
}

/**
 * Writes `input` to a zlib stream (set up with `listen`) and resolves with what came out. Rejects with
 * OutputLimitError as soon as the output passes `maxOutput` bytes, or with zlib's error; either way the
 * stream is unusable. The streams sync-flush every write (SYNC_FLUSH_EVERY_WRITE), so all of the output
 * has come when the last write calls back. Output that came in one chunk is returned as it is, a view
 * of zlib's output buffer, when that buffer is at most `maxViewOverhead` times its size; else copied.
 */
function runZlib(stream: ZlibStream, input: readonly Buffer[], maxOutput: number, maxViewOverhead: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const job: ZlibJob = { chunks: [], size: 0, maxOutput, maxViewOverhead, resolve, reject };
    stream[JOB] = job;
    const last = input.length - 1;
    for (let n = 0; n < last; n++) stream.write(input[n]);
    // A stream destroyed meanwhile (the connection ended) reports it here.
    stream.write(input[last], (error?: Error | null) => settleJob(stream, job, error ?? undefined));
  });
}

export class PerMessageDeflateExtension implements WebSocketExtension {
  private inflater: InflateRaw | undefined;
  /** Whether the inflater was made with LARGE_OUTPUT_CHUNK: from the first message that inflated to LARGE_MESSAGE (and a window) or more on. */
  private inflatesLargeMessages = false;
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
        const out = await runZlib(inflater, fin ? [data, TAIL] : [data], room, MAX_VIEW_OVERHEAD);
        if (this.disposed) throw closedError();
        this.incomingSize += out.length;
        if (inflater.readableEnded) {
          this.replaceInflater(out);
        } else if (fin && !this.inflatesLargeMessages && out.length >= Math.max(LARGE_MESSAGE, this.clientWindowSize)) {
          this.inflatesLargeMessages = true;
          this.replaceInflater(out);
        } else if (fin && this.parameters.clientNoContextTakeover) {
          inflater.reset();
        }
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
      // zlib writes no sync-flush marker for a flush with no input since the last one, and an empty
      // frame still needs one: a write that does not flush comes in between.
      if (data.length === 0) deflater.flush(constants.Z_NO_FLUSH);
      try {
        // Compressed output is written out and dropped: a view of zlib's buffer never stays long.
        const out = await runZlib(deflater, [data], Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
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

  private get clientWindowSize(): number {
    return 1 << this.parameters.clientWindowBits;
  }

  /**
   * A new inflater that goes on from `lastOutput`, which it takes as its window (with context takeover).
   * Used where a message ended its DEFLATE stream with a BFINAL block (§7.2.3.4): zlib then takes no
   * more input. History older than that message is gone then, and a sender that reaches back to it
   * fails with 1007 rather than inflating wrongly. Used too to move to LARGE_OUTPUT_CHUNK after a
   * message of a window or more: that message's end is the whole window, so nothing is lost.
   */
  private replaceInflater(lastOutput: Buffer): void {
    this.inflater?.close();
    const dictionary = this.parameters.clientNoContextTakeover ? undefined : lastOutput.subarray(Math.max(0, lastOutput.length - this.clientWindowSize));
    this.inflater = this.newInflater(dictionary !== undefined && dictionary.length > 0 ? dictionary : undefined);
  }

  private newInflater(dictionary?: Buffer): InflateRaw {
    const chunkSize = this.inflatesLargeMessages ? LARGE_OUTPUT_CHUNK : undefined;
    return listen(createInflateRaw({ ...SYNC_FLUSH_EVERY_WRITE, windowBits: this.parameters.clientWindowBits, dictionary, chunkSize }));
  }

  private newDeflater(): DeflateRaw {
    return listen(
      createDeflateRaw({ ...SYNC_FLUSH_EVERY_WRITE, level: this.factory.config.compressionLevel, windowBits: this.parameters.serverWindowBits }),
    );
  }
}
