/**
 * What raw and default server sessions share: the connection, the upgrade
 * call, `incoming`, sending, serialization, and running a handler against
 * the session. Subclasses decide what frames reach `incoming` and what
 * happens around the handler.
 */
import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { CloseCode, CloseReason } from '../protocol/close-reason.js';
import { Frame, frameOf } from '../protocol/frame.js';
import { FrameType } from '../protocol/frame-type.js';
import { WebSocketProtocolError } from '../protocol/protocol-error.js';
import type { WebSocketExtension } from '../protocol/websocket-extension.js';
import { ClosedSendChannelError, closedSend, quietly } from './channel-errors.js';
import { BoundedReceiveChannel, type ReceiveChannelLimits } from './receive-channel.js';
import { handlerFailure } from './handler-failure.js';
import type { WebSocketConverter } from './websocket-converter.js';
import type { FrameReceiver, WebSocketConnection } from './websocket-connection.js';
import type {
  OutgoingChannel,
  WebSocketApplicationContext,
  WebSocketCall,
  WebSocketServerSession,
} from './websocket-session.js';
import type { SessionSettings } from './websocket-session-options.js';
import type { SubscribeOptions, SubscribeResult, TopicMembership } from './topic-membership.js';

/** A route handler; typed loosely here, since each route declares the session type it expects. */
export type SessionHandler<S = never> = (session: S) => unknown;

const frameSize = (frame: Frame): number => frame.data.length;

/** `incoming`'s limits, one object per settings (a route's sessions share theirs): the channel only reads them. */
const limitsBySettings = new WeakMap<SessionSettings, ReceiveChannelLimits>();
function channelLimits(settings: SessionSettings): ReceiveChannelLimits {
  let limits = limitsBySettings.get(settings);
  if (limits === undefined) {
    limits = Object.freeze({ capacity: settings.incomingCapacity, maxBytes: settings.incomingMaxBytes });
    limitsBySettings.set(settings, limits);
  }
  return limits;
}
const ignore = () => undefined;

/**
 * A frame through the extensions, each step after the one before it (which may be async): outgoing
 * frames in the extensions' order, incoming ones in reverse.
 */
function throughExtensions(
  frame: Frame,
  extensions: readonly WebSocketExtension[],
  step: 'processOutgoingFrame' | 'processIncomingFrame',
): Frame | Promise<Frame> {
  const outgoing = step === 'processOutgoingFrame';
  let result: Frame | Promise<Frame> = frame;
  for (let n = 0; n < extensions.length; n++) {
    const extension = extensions[outgoing ? n : extensions.length - 1 - n];
    result = result instanceof Promise ? result.then((next) => extension[step](next)) : extension[step](result);
  }
  return result;
}

/**
 * A session's yes/no states, one bit each of its `flags` (a boolean field takes 8 bytes of every session).
 * An incoming frame is inside an async extension: nothing more is read until it comes out.
 */
const RECEIVING_THROUGH_EXTENSIONS = 1;
/** A Close is on its way (queued behind extension work) or the session is ending: sends are over before the connection knows. */
const SENDS_STOPPED = 2;
/** The peer does not read (maxBufferedBytes): reported and closed once. */
const SEND_BUFFER_FULL = 4;
/** The bits from this one on are a subclass's own. */
export const FIRST_SUBCLASS_FLAG = 8;

/** A frame handed to the connection: `written` settles as `connection.write` does. */
interface QueuedWrite {
  written: Promise<void>;
}

export abstract class BaseWebSocketSession implements WebSocketServerSession, FrameReceiver {
  protected static readonly logger = new Logger('WebSocketSession');

  readonly incoming: BoundedReceiveChannel<Frame>;
  /** `outgoing`, made when first asked for: `send()` does not need it. */
  private outgoingChannel: OutgoingChannel | undefined;
  /** Settles once the last frame queued behind async extension work was handed to the connection. */
  private outgoingTail: Promise<void> | undefined;
  private outgoingQueuedBytes = 0;
  /** Yes/no states, one bit each (RECEIVING_THROUGH_EXTENSIONS, SENDS_STOPPED, ...). */
  private flags = 0;
  /** Given by the registry that tracks the session; the subscriptions themselves live there. */
  private topicMembership: TopicMembership | undefined;
  /** Made when first asked for: most sessions never need one. */
  private sessionId: string | undefined;

  constructor(
    protected readonly connection: WebSocketConnection,
    readonly call: WebSocketCall,
    private readonly applicationRef: WebSocketApplicationContext | undefined,
    protected readonly settings: SessionSettings,
    /** Negotiated in the handshake, in the order of the response: outgoing frames pass them in order, incoming in reverse. */
    readonly extensions: readonly WebSocketExtension[] = [],
  ) {
    connection.setLimits({ maxBufferedBytes: settings.maxBufferedBytes, idleTimeout: settings.idleTimeout });
    this.incoming = new BoundedReceiveChannel<Frame>(
      channelLimits(settings),
      frameSize,
      connection,
    );
  }

  // Getters rather than fields: read from the route's settings, not copied into every session.
  get masking(): boolean {
    return false;
  }

  get maxFrameSize(): number {
    return this.settings.maxFrameSize;
  }

  get converter(): WebSocketConverter {
    return this.settings.converter;
  }

  get outgoing(): OutgoingChannel {
    return (this.outgoingChannel ??= new SessionOutgoing(this));
  }

  get application(): WebSocketApplicationContext {
    if (this.applicationRef === undefined) {
      throw new Error('This session has no application context: pass `application` to WebSocketUpgrade');
    }
    return this.applicationRef;
  }

  get id(): string {
    return (this.sessionId ??= randomUUID());
  }

  get isActive(): boolean {
    return !this.hasFlag(SENDS_STOPPED | SEND_BUFFER_FULL) && this.connection.acceptsFrames;
  }

  get canReceive(): boolean {
    return !this.hasFlag(RECEIVING_THROUGH_EXTENSIONS) && this.hasRoom();
  }

  /** Whether any of the `flags` bits is set. */
  protected hasFlag(flags: number): boolean {
    return (this.flags & flags) !== 0;
  }

  protected setFlag(flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag;
  }

  /** Whether the session takes another frame from the parser. */
  protected hasRoom(): boolean {
    return !this.incoming.full;
  }

  send(content: string | Uint8Array | Frame): Promise<void> {
    let frame: Frame;
    try {
      frame = frameOf(content);
    } catch (error) {
      // Content that is no text nor bytes: the caller's mistake, a visible rejection rather than a throw.
      return Promise.reject(error);
    }
    return this.sendFrame(frame);
  }

  flush(): Promise<void> {
    return this.connection.flush();
  }

  terminate(): void {
    this.connection.destroy();
  }

  sendSerialized(value: unknown): Promise<void> {
    let serialized: Frame;
    try {
      serialized = this.converter.serialize(value);
    } catch (error) {
      // A value the converter refuses is the caller's to see: a visible rejection rather than a throw.
      return Promise.reject(error);
    }
    return this.send(serialized);
  }

  async receiveDeserialized<T = unknown>(): Promise<T> {
    return this.converter.deserialize(await this.incoming.receive()) as T;
  }

  subscribe(topic: string, options?: SubscribeOptions): Promise<SubscribeResult> {
    return this.topicMembership?.subscribe(this, topic, options) ?? Promise.reject(untrackedTopics());
  }

  unsubscribe(topic: string): Promise<void> {
    return this.topicMembership?.unsubscribe(this, topic) ?? Promise.resolve();
  }

  isSubscribed(topic: string): boolean {
    return this.topicMembership?.isSubscribed(this, topic) ?? false;
  }

  /** @internal Called by the registry that tracks the session: from now on it may subscribe to topics. */
  joinTopics(membership: TopicMembership): void {
    this.topicMembership = membership;
  }

  /** Runs a handler on the opened session, then finishes it. Resolves when the connection is gone. */
  async run(handler: SessionHandler): Promise<void> {
    let failure: CloseReason | undefined;
    try {
      await (handler as SessionHandler<this>)(this);
    } catch (error) {
      failure = this.failureReason(error);
    }
    await this.finish(failure);
  }

  /** Starts reading frames from the connection: once, right after the 101 went out. */
  open(): void {
    this.connection.start(this);
  }

  /**
   * Ends the session once its handler is done: normally, or with `failure`
   * as the close reason. Resolves when the connection is gone.
   */
  async finish(failure?: CloseReason): Promise<void> {
    if (!this.connection.isClosed) await this.afterHandler(failure);
    await this.connection.closed;
  }

  /** The close reason for an error the handler threw (see handlerFailure), logged once. */
  private failureReason(error: unknown): CloseReason | undefined {
    const { reason, level } = handlerFailure(error);
    const message = `Handler for ${this.call.path} ended with ${String(error)}`;
    if (level === 'error') BaseWebSocketSession.logger.error(message, (error as Error)?.stack);
    else BaseWebSocketSession.logger[level](message);
    return reason;
  }

  abstract close(reason?: CloseReason): Promise<void>;
  /** A frame from the peer, through the extensions. */
  protected abstract handleFrame(frame: Frame): void;
  protected abstract onConnectionClosed(): void;
  /** @internal What `outgoing.send` does. */
  abstract sendFrame(frame: Frame): Promise<void>;
  /** What the session does with a connection still open when its handler returned (no failure) or failed. */
  protected abstract afterHandler(failure: CloseReason | undefined): Promise<void>;

  onFrame(frame: Frame): void {
    if (this.extensions.length === 0) return this.handleFrame(frame);
    let processed: Frame | Promise<Frame>;
    try {
      processed = this.processIncoming(frame);
    } catch (error) {
      return this.onExtensionFailure(error);
    }
    if (!(processed instanceof Promise)) return this.handleFrame(processed);
    this.setFlag(RECEIVING_THROUGH_EXTENSIONS, true);
    processed.then(
      (result) => {
        this.setFlag(RECEIVING_THROUGH_EXTENSIONS, false);
        if (!this.connection.isReading) return;
        this.handleFrame(result);
        this.connection.pump();
      },
      (error: unknown) => {
        this.setFlag(RECEIVING_THROUGH_EXTENSIONS, false);
        this.onExtensionFailure(error);
      },
    );
  }

  onClosed(): void {
    for (const extension of this.extensions) extension.dispose();
    this.topicMembership?.leaveAll(this);
    this.onConnectionClosed();
  }

  onProtocolError(error: WebSocketProtocolError): void {
    BaseWebSocketSession.logger.warn(`Closing ${this.call.path} with ${error.closeCode}: ${error.message}`);
    this.closeConnection(new CloseReason(error.closeCode, error.message));
  }

  /** 1001, not 1008: a quiet peer broke no rule, and 1001 tells clients that reconnecting is fine. */
  onIdleTimeout(): void {
    BaseWebSocketSession.logger.debug(`Closing ${this.call.path}: nothing from the peer for ${this.settings.idleTimeout} ms`);
    this.closeConnection(new CloseReason(CloseCode.GOING_AWAY, 'Idle timeout'));
  }

  /** The Close goes behind what is queued; `end()` drops TCP after the close timeout if the peer still does not read. Once. */
  onSendBufferFull(): void {
    if (this.hasFlag(SEND_BUFFER_FULL)) return;
    this.setFlag(SEND_BUFFER_FULL, true);
    BaseWebSocketSession.logger.warn(
      `Closing ${this.call.path} with 1008: the peer does not read, more than maxBufferedBytes ${this.settings.maxBufferedBytes} queued`,
    );
    this.closeConnection(new CloseReason(CloseCode.VIOLATED_POLICY, 'Peer does not read: maxBufferedBytes exceeded'));
  }

  /** Stops receiving, sends Close (unless one went out) and ends TCP, without waiting for an answer. */
  protected closeConnection(reason: CloseReason): void {
    this.stopReceiving();
    this.sendCloseAndEnd(reason);
  }

  protected stopReceiving(): void {
    this.connection.stopReading();
    this.incoming.close();
  }

  protected sendCloseAndEnd(reason: CloseReason): void {
    this.endAfterQueued(new Frame.Close(reason));
  }

  /** Sends a frame through the extensions, in order; resolves as `connection.write` does. */
  protected write(frame: Frame): Promise<void> {
    // Before the 101 the connection refuses the frame: it must not advance an extension's state (deflate's context).
    if (this.extensions.length === 0 || !this.connection.isStarted) return this.connection.write(frame);
    // A Close (or the end) is queued: nothing may follow it onto the wire (RFC 6455 §5.5.1), nor slip in before it.
    if (this.hasFlag(SENDS_STOPPED)) return closedSend();
    if (frame.frameType === FrameType.CLOSE) {
      this.setFlag(SENDS_STOPPED, true);
    } else if (this.outgoingTail !== undefined && this.outgoingQueuedBytes > this.settings.maxBufferedBytes) {
      // Frames waiting for extension work count against maxBufferedBytes too; the Close always goes.
      if (!this.connection.closeFrameSent) this.onSendBufferFull();
      return closedSend();
    }
    let queued: QueuedWrite | Promise<QueuedWrite>;
    try {
      queued = this.queueFrame(frame);
    } catch (error) {
      return quietly(Promise.reject(this.outgoingFailure(error)));
    }
    if (!(queued instanceof Promise)) return queued.written;
    // A promise of its own, so marked as the connection's refusals are: one more for a frame that waits for extension work.
    return quietly(
      queued.then(
        ({ written }) => written,
        (error: unknown) => {
          throw this.outgoingFailure(error);
        },
      ),
    );
  }

  /**
   * An extension failed on an outgoing frame. Before the connection ended, the frame is lost and a stateful
   * extension (deflate's shared context) cannot go on: the session closes (one log line). Either way the
   * send then fails as sends on an ended session do, which a handler takes as a normal end.
   */
  private outgoingFailure(error: unknown): ClosedSendChannelError {
    if (!this.connection.isClosed) this.onExtensionFailure(error);
    return new ClosedSendChannelError();
  }

  /** Ends TCP once what is queued (and `close`, if given and no Close went out yet) was handed to the connection. */
  protected endAfterQueued(close?: Frame): void {
    this.setFlag(SENDS_STOPPED, true);
    if (this.extensions.length === 0) {
      if (close !== undefined && !this.connection.closeFrameSent) this.connection.write(close).catch(ignore);
      this.connection.end();
      return;
    }
    const end = () => this.connection.end();
    void (this.outgoingTail ?? Promise.resolve()).then(() => {
      if (close === undefined || this.connection.closeFrameSent) return end();
      let queued: QueuedWrite | Promise<QueuedWrite>;
      try {
        queued = this.queueFrame(close);
      } catch {
        return end();
      }
      void Promise.resolve(queued)
        .then(({ written }) => written.catch(ignore), ignore)
        .then(end);
    });
  }

  private queueFrame(frame: Frame): QueuedWrite | Promise<QueuedWrite> {
    if (this.outgoingTail !== undefined) {
      return this.enqueue(frame.data.length, this.outgoingTail.then(() => this.processOutgoing(frame)));
    }
    const processed = this.processOutgoing(frame);
    if (!(processed instanceof Promise)) return { written: this.connection.write(processed) };
    return this.enqueue(frame.data.length, processed);
  }

  /** Queues a frame whose extension work is async: frames sent after it wait behind it, so order holds. */
  private enqueue(bytes: number, processed: Promise<Frame>): Promise<QueuedWrite> {
    this.outgoingQueuedBytes += bytes;
    const queued = processed.then((frame) => ({ written: this.connection.write(frame) }));
    const tail: Promise<void> = queued.then(ignore, ignore).then(() => {
      this.outgoingQueuedBytes -= bytes;
      if (this.outgoingTail === tail) this.outgoingTail = undefined;
    });
    this.outgoingTail = tail;
    return queued;
  }

  private processOutgoing(frame: Frame): Frame | Promise<Frame> {
    return throughExtensions(frame, this.extensions, 'processOutgoingFrame');
  }

  private processIncoming(frame: Frame): Frame | Promise<Frame> {
    return throughExtensions(frame, this.extensions, 'processIncomingFrame');
  }

  /**
   * An extension refused a frame: a WebSocketProtocolError closes with its code (a peer's fault), anything
   * else as a handler's error would (WebSocketCloseException its own code, a bug 1011).
   */
  private onExtensionFailure(error: unknown): void {
    if (this.connection.isClosed) return;
    if (error instanceof WebSocketProtocolError) {
      this.onProtocolError(error);
      return;
    }
    const { reason, level } = handlerFailure(error);
    const message = `Closing ${this.call.path}: an extension failed with ${String(error)}`;
    if (level === 'error') BaseWebSocketSession.logger.error(message, (error as Error)?.stack);
    else BaseWebSocketSession.logger[level](message);
    if (reason !== undefined) this.closeConnection(reason);
  }
}

function untrackedTopics(): Error {
  return new Error(
    'session.subscribe(): this session is not in a WebSocketSessions registry (it came from WebSocketUpgrade), ' +
      'and topics live there: subscribe sessions of @WebSocketRoute methods',
  );
}

/** `outgoing`: a class, so a session keeps no closure for it. */
class SessionOutgoing implements OutgoingChannel {
  constructor(private readonly session: BaseWebSocketSession) {}

  send(frame: Frame): Promise<void> {
    return this.session.sendFrame(frame);
  }
}
