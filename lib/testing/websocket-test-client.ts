/**
 * The client end of a WebSocket under test: sends masked frames, queues the
 * server's messages so none are lost between `receive*()` calls, and does the
 * chores a test should not have to write (answering pings, joining fragments,
 * answering the close handshake). Built on the package's own codec, so the
 * testing entry needs no WebSocket library at run time.
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { CloseCode, CloseReason, isValidWireCloseCode } from '../protocol/close-reason.js';
import { Frame } from '../protocol/frame.js';
import { FrameParser } from '../protocol/frame-parser.js';
import { FrameSerializer } from '../protocol/frame-serializer.js';
import { FrameType } from '../protocol/frame-type.js';
import { WebSocketProtocolError } from '../protocol/protocol-error.js';
import { quietly } from '../session/channel-errors.js';
import { WebSocketReceiveError } from './testing-errors.js';

/** The server's Close frame: its code (1005 when it carried none) and reason text. */
export interface ReceivedClose {
  code: number;
  reason: string;
}

/** A WebSocket connection to the app under test; get one from `connectWebSocket`. */
export interface WebSocketTestClient {
  /** The `ws://` URL the client connected to. */
  readonly url: string;
  /** The subprotocol the server picked, or undefined when it picked none. */
  readonly protocol: string | undefined;
  /** How many Pings the server sent; each was answered with a Pong carrying the same payload. */
  readonly pingsReceived: number;

  /** Sends a Text message (string) or a Binary message (bytes). Throws once the connection is closing or closed. */
  send(content: string | Uint8Array): void;
  /** Sends `JSON.stringify(value)` as a Text message. */
  sendJson(value: unknown): void;
  /**
   * Sends any frame as is (masked, as a client must): a fragment (`fin`
   * false), a Ping, a Close. Sending a Close starts the close handshake like `close()`.
   */
  sendFrame(frame: Frame): void;

  /**
   * The next Text or Binary message, fragments joined, as a `Frame`
   * (`frame.frameType`, `frame.readText()`, `frame.data`). Rejects with
   * `WebSocketReceiveError` after `timeoutMs` or when the connection ended first.
   */
  receive(timeoutMs?: number): Promise<Frame>;
  /** The next message's text; rejects when it is a Binary message (and leaves it queued). */
  receiveText(timeoutMs?: number): Promise<string>;
  /** The next message's bytes; rejects when it is a Text message (and leaves it queued). */
  receiveBinary(timeoutMs?: number): Promise<Buffer>;
  /** The next message (Text, or Binary as UTF-8) parsed as JSON; rejects when it is not JSON. */
  receiveJson<T = unknown>(timeoutMs?: number): Promise<T>;
  /**
   * The server's Close. The client has answered it already (it echoes the
   * code as soon as the Close arrives). Rejects while unread messages come
   * before it, or when the connection ended without one.
   */
  receiveClose(timeoutMs?: number): Promise<ReceivedClose>;

  /**
   * Runs the close handshake: sends Close (1000 by default) unless one was
   * sent already, and resolves with the server's Close once it came back and
   * the TCP connection ended. Rejects when the server does not close within
   * the client's timeout (the socket is then dropped) or ended without a Close;
   * not awaited (cleanup), that rejection is dropped, never an unhandled
   * rejection. Rejects with a RangeError for a code that may not be sent.
   */
  close(code?: number, reason?: string): Promise<ReceivedClose>;
  /** Drops the TCP connection at once, with no close handshake. Safe to call at any time. */
  terminate(): void;
}

/** Largest frame and reassembled message accepted from the server: the server's own default. */
const MAX_MESSAGE_SIZE = 64 * 1024 * 1024;
/**
 * Reading from the socket pauses while this many messages (or bytes) wait
 * unread, so a chatty route cannot fill the test's memory; nothing is dropped.
 */
const QUEUE_CAPACITY = 1024;
const QUEUE_MAX_BYTES = 16 * 1024 * 1024;

type Attempt<T> = { value: T } | { error: string } | undefined;

interface Waiter {
  /** Settles the call from the current state, or returns false to keep waiting. */
  attempt(): boolean;
  timer: NodeJS.Timeout;
}

function describeFrame(frame: Frame): string {
  if (frame.frameType === FrameType.TEXT) {
    const text = frame.readText();
    return `a Text message ${JSON.stringify(text.length > 80 ? text.slice(0, 80) + '…' : text)}`;
  }
  return `a Binary message of ${frame.data.length} bytes`;
}

function describeClose(close: ReceivedClose): string {
  return `the server closed the connection (Close ${close.code}${close.reason ? ` ${JSON.stringify(close.reason)}` : ''})`;
}

export class TestClientConnection implements WebSocketTestClient {
  private readonly parser = new FrameParser({ maxFrameSize: MAX_MESSAGE_SIZE, requireMask: false });
  private readonly serializer = new FrameSerializer({ masking: true });
  private readonly queue: Frame[] = [];
  private queuedBytes = 0;
  private waiters: Waiter[] = [];
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  private pings = 0;

  /** The server's Close, once read off the wire. */
  private serverClose: ReceivedClose | undefined;
  /** Why no more frames will come when that is not a server Close. */
  private ending: string | undefined;
  private closeSent = false;
  private terminated = false;
  private socketGone = false;
  private socketError: Error | undefined;
  private paused = false;
  private processing = false;
  private readonly socketClosed: Promise<void>;

  constructor(
    private readonly socket: Socket,
    head: Buffer,
    readonly url: string,
    readonly protocol: string | undefined,
    private readonly timeout: number,
  ) {
    socket.setNoDelay(true);
    this.socketClosed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      this.parser.push(chunk);
      this.process();
    });
    socket.on('error', (error) => (this.socketError ??= error));
    socket.on('close', () => {
      this.socketGone = true;
      this.process();
    });
    this.parser.push(head);
    socket.resume();
    this.process();
  }

  get pingsReceived(): number {
    return this.pings;
  }

  send(content: string | Uint8Array): void {
    this.sendFrame(typeof content === 'string' ? new Frame.Text(content) : new Frame.Binary(content));
  }

  sendJson(value: unknown): void {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`Cannot send ${typeof value} as JSON`);
    this.send(text);
  }

  sendFrame(frame: Frame): void {
    if (this.closeSent) {
      throw new Error(
        this.serverClose
          ? `Cannot send: ${describeClose(this.serverClose)}`
          : 'Cannot send: the client has sent its Close frame already',
      );
    }
    if (this.socketGone || !this.socket.writable) throw new Error('Cannot send: the connection is closed');
    if (frame.frameType === FrameType.CLOSE) this.closeSent = true;
    this.write(frame);
  }

  receive(timeoutMs?: number): Promise<Frame> {
    return this.receiveMessage<Frame>('receive()', timeoutMs, (frame) => ({ value: frame }));
  }

  receiveText(timeoutMs?: number): Promise<string> {
    return this.receiveMessage<string>('receiveText()', timeoutMs, (frame) =>
      frame.frameType === FrameType.TEXT
        ? { value: frame.readText() }
        : { error: `receiveText() expected a Text message, got ${describeFrame(frame)}` },
    );
  }

  receiveBinary(timeoutMs?: number): Promise<Buffer> {
    return this.receiveMessage<Buffer>('receiveBinary()', timeoutMs, (frame) =>
      frame.frameType === FrameType.BINARY
        ? { value: frame.data }
        : { error: `receiveBinary() expected a Binary message, got ${describeFrame(frame)}` },
    );
  }

  receiveJson<T = unknown>(timeoutMs?: number): Promise<T> {
    return this.receiveMessage<T>('receiveJson()', timeoutMs, (frame) => {
      try {
        return { value: JSON.parse(frame.readText()) as T };
      } catch (error) {
        return { error: `receiveJson() got ${describeFrame(frame)}, which is not JSON: ${(error as Error).message}` };
      }
    });
  }

  receiveClose(timeoutMs?: number): Promise<ReceivedClose> {
    return this.wait<ReceivedClose>('receiveClose()', timeoutMs, () => {
      if (this.queue.length > 0) {
        const more = this.queue.length > 1 ? ` (and ${this.queue.length - 1} more unread)` : '';
        return { error: `receiveClose() expected the server's Close, got ${describeFrame(this.queue[0])}${more}` };
      }
      if (this.serverClose) return { value: this.serverClose };
      if (this.ending) return { error: `receiveClose() found no Close frame: ${this.ending}` };
      return undefined;
    });
  }

  close(code = 1000, reason = ''): Promise<ReceivedClose> {
    let frame: Frame;
    try {
      frame = new Frame.Close(new CloseReason(code, reason));
    } catch (error) {
      // A code that may not be sent is the test's mistake: a visible rejection, and nothing sent.
      return Promise.reject(error);
    }
    // Often called without awaiting, in a test's cleanup: a server that then closes badly must not
    // surface as an unhandled rejection (failing the run, or a later test); awaited, it still rejects.
    return quietly(this.closeHandshake(frame));
  }

  private async closeHandshake(frame: Frame): Promise<ReceivedClose> {
    if (!this.closeSent && !this.socketGone && this.socket.writable) {
      this.closeSent = true;
      this.write(frame);
      // Backpressure stops here: the server's Close must be read even behind unread messages.
      this.process();
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.timeout)));
    const late = await Promise.race([this.socketClosed.then(() => false), timedOut]).finally(() => clearTimeout(timer));
    if (late) {
      const waitingFor = this.serverClose ? 'the server to end the TCP connection' : "the server's Close";
      this.terminate();
      throw new WebSocketReceiveError(`close() timed out after ${this.timeout} ms waiting for ${waitingFor}`);
    }
    this.process();
    if (this.serverClose) return this.serverClose;
    throw new WebSocketReceiveError(`close() got no Close frame back: ${this.ending ?? 'the connection ended'}`);
  }

  terminate(): void {
    this.terminated = true;
    this.socket.destroy();
  }

  private receiveMessage<T>(method: string, timeoutMs: number | undefined, accept: (frame: Frame) => Attempt<T>): Promise<T> {
    return this.wait(method, timeoutMs, () => {
      const frame = this.queue[0];
      if (frame === undefined) {
        if (this.serverClose) return { error: `${method} found no message: ${describeClose(this.serverClose)}` };
        if (this.ending) return { error: `${method} found no message: ${this.ending}` };
        return undefined;
      }
      const result = accept(frame);
      // A call that fails on a message leaves it queued, so the test can still look at it.
      if (result && 'value' in result) {
        this.queue.shift();
        this.queuedBytes -= frame.data.length;
      }
      return result;
    });
  }

  /** Queues a receive call; calls are served in order, each from the head of the queue. */
  private wait<T>(method: string, timeoutMs: number | undefined, attempt: () => Attempt<T>): Promise<T> {
    const ms = timeoutMs ?? this.timeout;
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter = {
        attempt: () => {
          const result = attempt();
          if (result === undefined) return false;
          clearTimeout(waiter.timer);
          if ('value' in result) resolve(result.value);
          else reject(new WebSocketReceiveError(result.error));
          return true;
        },
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((other) => other !== waiter);
          reject(new WebSocketReceiveError(`${method} timed out after ${ms} ms: nothing arrived`));
        }, ms),
      };
      // Unreferenced: a pending receive alone must not keep a finished test process alive.
      waiter.timer.unref();
      this.waiters.push(waiter);
      this.process();
    });
  }

  /** Pulls frames off the parser and serves waiting calls until neither makes progress. */
  private process(): void {
    if (this.processing) return;
    this.processing = true;
    try {
      for (;;) {
        const pulled = this.pullFrames();
        let served = 0;
        while (this.waiters.length > 0 && this.waiters[0].attempt()) {
          this.waiters.shift();
          served++;
        }
        if (pulled === 0 && served === 0) break;
      }
    } finally {
      this.processing = false;
    }
    const full = this.isFull();
    if (full && !this.paused && !this.socketGone) {
      this.paused = true;
      this.socket.pause();
    } else if (!full && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  private isFull(): boolean {
    if (this.closeSent) return false;
    return this.queue.length >= QUEUE_CAPACITY || this.queuedBytes >= QUEUE_MAX_BYTES;
  }

  private pullFrames(): number {
    let pulled = 0;
    while (this.serverClose === undefined && this.ending === undefined && !this.isFull()) {
      let frame: Frame | undefined;
      try {
        frame = this.parser.next();
      } catch (error) {
        const protocolError = error as WebSocketProtocolError;
        this.fail(protocolError.closeCode ?? CloseCode.PROTOCOL_ERROR, protocolError.message);
        return pulled + 1;
      }
      if (frame === undefined) {
        if (this.socketGone) {
          this.ending = this.terminated
            ? 'the client called terminate()'
            : `the connection ended without a Close frame${this.socketError ? ` (${this.socketError.message})` : ''}`;
          pulled++;
        }
        break;
      }
      pulled++;
      this.onFrame(frame);
    }
    return pulled;
  }

  private onFrame(frame: Frame): void {
    switch (frame.frameType) {
      case FrameType.PING:
        this.pings++;
        if (!this.closeSent && this.socket.writable) this.write(new Frame.Pong(frame.data));
        return;
      case FrameType.PONG:
        return;
      case FrameType.CLOSE:
        this.onClose(frame);
        return;
      default:
        this.onData(frame);
    }
  }

  private onData(frame: Frame): void {
    let message = frame;
    if (!frame.fin || this.fragments.length > 0) {
      this.fragmentBytes += frame.data.length;
      if (this.fragmentBytes > MAX_MESSAGE_SIZE) {
        this.fail(CloseCode.TOO_BIG, `Message of more than ${MAX_MESSAGE_SIZE} bytes`);
        return;
      }
      this.fragments.push(frame.data);
      if (!frame.fin) return;
      message = Frame.byType(frame.frameType, true, Buffer.concat(this.fragments, this.fragmentBytes));
      this.fragments = [];
      this.fragmentBytes = 0;
    }
    if (message.frameType === FrameType.TEXT && !isUtf8(message.data)) {
      this.fail(CloseCode.NOT_CONSISTENT, 'Text message is not valid UTF-8');
      return;
    }
    this.queue.push(message);
    this.queuedBytes += message.data.length;
  }

  private onClose(frame: Frame): void {
    let close: ReceivedClose;
    if (frame.data.length === 0) {
      close = { code: 1005, reason: '' };
    } else {
      const reason = frame.readReason();
      if (reason === null || !isValidWireCloseCode(reason.code)) {
        this.fail(CloseCode.PROTOCOL_ERROR, `Invalid Close frame payload (${frame.data.length} bytes)`);
        return;
      }
      if (!isUtf8(frame.data.subarray(2))) {
        this.fail(CloseCode.NOT_CONSISTENT, 'Close reason is not valid UTF-8');
        return;
      }
      close = { code: reason.code, reason: reason.message };
    }
    this.serverClose = close;
    if (!this.closeSent && this.socket.writable) {
      // Echo the code, as RFC 6455 §5.5.1 suggests; an empty Close is answered with an empty one.
      this.closeSent = true;
      this.write(new Frame.Close(close.code === 1005 ? undefined : new CloseReason(close.code)));
    }
    this.endAfterClose();
  }

  /** Both Close frames are out: end our side, and drop the socket if the server never ends its own. */
  private endAfterClose(): void {
    this.socket.end();
    setTimeout(() => this.socket.destroy(), this.timeout).unref();
  }

  /** The server broke the protocol: close with the matching code and report it to every receive. */
  private fail(code: number, message: string): void {
    this.ending = `the server broke the protocol: ${message}`;
    if (!this.closeSent && this.socket.writable) {
      this.closeSent = true;
      this.write(new Frame.Close(new CloseReason(code)));
    }
    this.endAfterClose();
  }

  private write(frame: Frame): void {
    for (const chunk of this.serializer.serialize(frame)) this.socket.write(chunk);
  }
}
