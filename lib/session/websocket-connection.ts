/**
 * The engine under both kinds of session: one upgraded socket, the frame
 * parser feeding a receiver as fast as the receiver takes frames, and the
 * serializer writing frames with the socket's own backpressure.
 */
import type { Socket } from 'node:net';
import { Logger } from '@nestjs/common';
import type { Frame } from '../protocol/frame.js';
import { FrameType } from '../protocol/frame-type.js';
import { FrameParser, type FrameParserOptions } from '../protocol/frame-parser.js';
import { FrameSerializer } from '../protocol/frame-serializer.js';
import { WebSocketProtocolError } from '../protocol/protocol-error.js';
import { ClosedSendChannelError, closedSend, quietly } from './channel-errors.js';
import { currentTurn, holdUntilTurnEnds, type HeldWriter } from './turn-writes.js';

export interface FrameReceiver {
  /** False stops parsing (and reading the socket) until `pump()` is called again. */
  readonly canReceive: boolean;
  onFrame(frame: Frame): void;
  /** The peer broke the protocol; nothing more is read. */
  onProtocolError(error: WebSocketProtocolError): void;
  /** The TCP connection is gone. */
  onClosed(): void;
  /** Nothing came from the peer for `idleTimeout` ms. */
  onIdleTimeout(): void;
  /** A send found more than `maxBufferedBytes` queued: the peer does not read. Sends are refused from now on. */
  onSendBufferFull(): void;
}

/** What the session sets on its connection before `start()`. */
export interface ConnectionLimits {
  /** Bytes that may sit in the socket's write buffer before a write is refused. */
  maxBufferedBytes: number;
  /** Milliseconds without data from the peer before `onIdleTimeout`; 0 is off. */
  idleTimeout: number;
}

const RESOLVED = Promise.resolve();
/** Lets the OS notice a peer that vanished without a FIN, for sessions that do not ping. */
const KEEP_ALIVE_DELAY = 30_000;
const logger = new Logger('WebSocketConnection');
const EMPTY = Buffer.alloc(0);
const ignore = () => undefined;

/**
 * The socket's listeners are shared functions, called with the socket as `this`, which points to its
 * connection: no closures (and no context holding them) per connection for its whole life.
 */
const CONNECTION = Symbol('WebSocketConnection');
interface OwnedSocket extends Socket {
  [CONNECTION]: WebSocketConnection;
}
function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[CONNECTION].onData(chunk);
}
function onSocketClose(this: OwnedSocket): void {
  this[CONNECTION].onSocketClose();
}
function onSocketEnd(this: OwnedSocket): void {
  this[CONNECTION].end();
}
function onSocketFinish(this: Socket): void {
  this.destroy();
}

/** Options per (maxFrameSize, allowedRsv, validateUtf8), shared by the connections of a route: a parser only reads them. */
const parserOptionsCache = new Map<number, FrameParserOptions[]>();
function parserOptions(maxFrameSize: number, allowedRsv: number, validateUtf8: boolean): FrameParserOptions {
  let byRsv = parserOptionsCache.get(maxFrameSize);
  if (byRsv === undefined) parserOptionsCache.set(maxFrameSize, (byRsv = []));
  // RSV bits take 3 bits: the UTF-8 flag goes above them.
  return (byRsv[allowedRsv | (validateUtf8 ? 8 : 0)] ??= Object.freeze({ maxFrameSize, requireMask: true, allowedRsv, validateUtf8 }));
}

/** Sending before the 101 would put WebSocket frames where the client still reads an HTTP response. */
export function notOpenError(): Error {
  return new Error('This WebSocket session is not open yet: nothing can be sent before the handshake completes');
}

export class WebSocketConnection implements HeldWriter {
  private readonly parser: FrameParser;
  private readonly serializer = new FrameSerializer();
  private receiver: FrameReceiver | undefined;
  private reading = true;
  private paused = false;
  /** False until `start()`: nothing may reach the socket before the 101 that `start()` follows. */
  private writable = false;
  private started = false;
  private socketClosed = false;
  private closeFrameWritten = false;
  private drain: Promise<void> | undefined;
  private endTimer: NodeJS.Timeout | undefined;
  /** No limit until `setLimits`: 2^31 - 1 rather than Infinity, which V8 would keep as a boxed number in every connection. */
  private maxBufferedBytes = 0x7fffffff;
  /** Set once a write found too much queued: every write but the Close is refused from then on. */
  private sendBufferFull = false;
  /** Writes are held until the end of this turn (see turn-writes.ts). */
  private corked = false;
  /** The turn of the last write: a second write in the same turn holds the rest of the turn's writes. */
  private lastWriteTurn = -1;
  /** The last turn with more than one write: the turn after one (a steady stream of bursts) holds even its first write. */
  private lastBurstTurn = -2;
  private idleTimeout = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastActivity = 0;
  /** Whether the socket emitted 'close' (`socketClosed` is only set once started). */
  private closeEmitted = false;
  /** `closed`, made when first asked for: most sessions only ask once their handler returned. */
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;

  constructor(
    private readonly socket: Socket,
    /** Bytes read past the upgrade request: the first frames. Not kept: Node's `head` is a view into its whole read buffer. */
    head: Buffer,
    maxFrameSize: number,
    /** Milliseconds `end()` waits for written data to leave before dropping the socket. */
    private readonly endTimeout: number,
    /** RSV bits the negotiated extensions use; any other is a protocol error. */
    allowedRsv = 0,
    /** Uncompressed text must be UTF-8, checked as it arrives (default sessions); raw sessions see text as it came. */
    validateUtf8 = false,
  ) {
    this.parser = new FrameParser(parserOptions(maxFrameSize, allowedRsv, validateUtf8));
    this.parser.push(head);
    (socket as OwnedSocket)[CONNECTION] = this;
    // Node drops its own 'error' listener before 'upgrade', and checks before the 101 may take a while. Errors
    // (ECONNRESET and the like) are followed by 'close', where the session learns of them.
    socket.on('error', ignore);
    // 'close', 'end' and 'finish' come once each: `on` spares a once-wrapper per listener for the session's life.
    socket.on('close', onSocketClose);
  }

  /** Resolves when the TCP connection is closed. */
  get closed(): Promise<void> {
    if (this.closedPromise === undefined) {
      this.closedPromise = this.closeEmitted ? RESOLVED : new Promise((resolve) => (this.resolveClosed = resolve));
    }
    return this.closedPromise;
  }

  get isClosed(): boolean {
    return this.socketClosed;
  }

  /** False once `stopReading()` ran or the socket closed: frames from the peer are ignored. */
  get isReading(): boolean {
    return this.reading;
  }

  /** True once `start()` ran: the 101 went out and frames may flow. */
  get isStarted(): boolean {
    return this.started;
  }

  /** True once a Close frame went out: RFC 6455 §5.5.1 allows nothing after it. */
  get closeFrameSent(): boolean {
    return this.closeFrameWritten;
  }

  /** Whether a data frame written now would be taken: started, not ended or closed, no Close out, buffer not overrun. */
  get acceptsFrames(): boolean {
    return this.writable && !this.closeFrameWritten && !this.sendBufferFull;
  }

  /** Sets the session's limits; before `start()`. */
  setLimits(limits: ConnectionLimits): void {
    this.maxBufferedBytes = limits.maxBufferedBytes;
    this.idleTimeout = limits.idleTimeout;
  }

  /** Starts reading; frames go to the receiver from now on. */
  start(receiver: FrameReceiver): void {
    this.receiver = receiver;
    this.started = true;
    this.writable = !this.socketClosed;
    const socket = this.socket;
    socket.setTimeout(0);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, KEEP_ALIVE_DELAY);
    socket.on('data', onSocketData);
    // 'error' and 'close' are heard since the constructor.
    // The HTTP server keeps sockets half-open; a peer's FIN without a Close frame ends ours too.
    socket.on('end', onSocketEnd);
    socket.on('finish', onSocketFinish);
    this.startIdleTimer();
    this.pump();
    if (!this.paused) socket.resume();
  }

  /** @internal The socket's 'data'. */
  onData(chunk: Buffer): void {
    if (!this.reading) return;
    if (this.idleTimeout > 0) this.lastActivity = performance.now();
    this.parser.push(chunk);
    this.pump();
  }

  /** @internal The socket's 'close': `closed` resolves; once started, the receiver learns of it. */
  onSocketClose(): void {
    this.closeEmitted = true;
    this.resolveClosed?.();
    this.resolveClosed = undefined;
    const receiver = this.receiver;
    if (receiver === undefined) return;
    this.socketClosed = true;
    this.writable = false;
    this.reading = false;
    if (this.endTimer !== undefined) clearTimeout(this.endTimer);
    this.stopIdleTimer();
    receiver.onClosed();
  }

  /** Hands parsed frames to the receiver while it takes them; pauses the socket when it does not. */
  pump(): void {
    const receiver = this.receiver;
    if (receiver === undefined || !this.reading) return;
    try {
      let frames = 0;
      while (receiver.canReceive) {
        const frame = this.parser.next();
        if (frame === undefined) break;
        // Several frames in one read (a pipelining peer): the answers the handler writes in
        // this turn leave together in one writev, after it, instead of one syscall each.
        if (++frames === 2 && this.writable && !this.corked) this.holdWrites();
        receiver.onFrame(frame);
        if (!this.reading) return;
      }
    } catch (error) {
      this.stopReading();
      if (error instanceof WebSocketProtocolError) {
        receiver.onProtocolError(error);
      } else {
        // Thrown inside a socket listener, it would take the whole process down.
        logger.error(`Dropping a connection after an internal error: ${String(error)}`, (error as Error)?.stack);
        this.destroy();
      }
      return;
    }
    const shouldPause = !receiver.canReceive;
    if (shouldPause !== this.paused) {
      this.paused = shouldPause;
      if (shouldPause) this.socket.pause();
      else this.socket.resume();
    }
  }

  /** Ignores everything the peer sends from now on, without letting it pile up. */
  stopReading(): void {
    this.reading = false;
    this.stopIdleTimer();
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /**
   * Writes a frame; resolves at once while the socket's buffer has room, else on 'drain'. A write the
   * connection refuses (gone, closing, buffer full) rejects quietly (see `quietly`); a caller's mistake
   * (before the 101, a frame that cannot be serialized) rejects as usual, for the caller to see.
   */
  write(frame: Frame): Promise<void> {
    if (!this.started) return Promise.reject(notOpenError());
    if (!this.writable || this.closeFrameWritten) return closedSend();
    let parts: Buffer[];
    try {
      parts = this.serializer.serialize(frame);
    } catch (error) {
      return Promise.reject(error);
    }
    const socket = this.socket;
    if (frame.frameType === FrameType.CLOSE) {
      // The Close always goes, behind whatever is queued: it is how a full buffer is reported.
      this.closeFrameWritten = true;
    } else if (this.sendBufferFull || socket.writableLength > this.maxBufferedBytes) {
      // Measured before the write, so one frame larger than the limit still goes on an empty buffer.
      if (!this.sendBufferFull) {
        this.sendBufferFull = true;
        this.receiver?.onSendBufferFull();
      }
      return closedSend();
    }
    const turn = currentTurn();
    if (turn !== this.lastWriteTurn) {
      this.lastWriteTurn = turn;
      if (this.lastBurstTurn === turn - 1 && !this.corked) this.holdWrites();
    } else {
      this.lastBurstTurn = turn;
      if (!this.corked) this.holdWrites();
    }
    let ok: boolean;
    if (parts.length === 1) {
      ok = socket.write(parts[0]);
    } else {
      socket.cork();
      socket.write(parts[0]);
      ok = socket.write(parts[1]);
      socket.uncork();
    }
    return ok ? RESOLVED : this.waitForDrain();
  }

  /** Resolves once everything written so far has left the socket's buffer. */
  flush(): Promise<void> {
    if (!this.writable || this.socket.writableLength === 0) return RESOLVED;
    return new Promise((resolve) => this.socket.write(EMPTY, () => resolve()));
  }

  /**
   * Flushes what was written, sends FIN, and destroys the socket once the
   * data is out, or after `endTimeout` if the peer does not read it.
   */
  end(): void {
    if (this.socketClosed || !this.writable) return;
    this.writable = false;
    this.socket.end();
    this.endTimer = setTimeout(() => this.socket.destroy(), this.endTimeout);
    this.endTimer.unref();
  }

  /** Corks the socket until the end of this turn. */
  private holdWrites(): void {
    this.corked = true;
    this.socket.cork();
    holdUntilTurnEnds(this);
  }

  /** Lets the writes held this turn go out. */
  releaseWrites(): void {
    this.corked = false;
    this.socket.uncork();
  }

  /** Drops the connection now. */
  destroy(): void {
    this.writable = false;
    this.socket.destroy();
  }

  /** Checks for idleness at most every `idleTimeout` ms instead of resetting a timer on each chunk. */
  private startIdleTimer(): void {
    if (this.idleTimeout <= 0) return;
    this.lastActivity = performance.now();
    const check = () => {
      this.idleTimer = undefined;
      if (!this.reading || this.socketClosed) return;
      const now = performance.now();
      // While paused, the session is the one not reading: the peer is not idle.
      if (this.paused) this.lastActivity = now;
      const idleFor = now - this.lastActivity;
      if (idleFor >= this.idleTimeout) {
        this.receiver?.onIdleTimeout();
        return;
      }
      this.idleTimer = setTimeout(check, this.idleTimeout - idleFor);
      this.idleTimer.unref();
    };
    this.idleTimer = setTimeout(check, this.idleTimeout);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** One promise for every write waiting on the same 'drain', marked once: it rejects if the socket closes first. */
  private waitForDrain(): Promise<void> {
    this.drain ??= quietly(new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        this.socket.off('close', onClose);
        this.drain = undefined;
        resolve();
      };
      const onClose = () => {
        this.socket.off('drain', onDrain);
        this.drain = undefined;
        reject(new ClosedSendChannelError());
      };
      this.socket.once('drain', onDrain);
      this.socket.once('close', onClose);
    }));
    return this.drain;
  }
}
