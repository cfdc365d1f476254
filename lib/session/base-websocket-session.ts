/**
 * What raw and default server sessions share: the connection, the upgrade
 * call, `incoming`, sending, serialization, and running a handler against
 * the session. Subclasses decide what frames reach `incoming` and what
 * happens around the handler.
 */
import { Logger } from '@nestjs/common';
import { CloseCode, CloseReason } from '../protocol/close-reason.js';
import { Frame } from '../protocol/frame.js';
import type { WebSocketProtocolError } from '../protocol/protocol-error.js';
import { BoundedReceiveChannel } from './receive-channel.js';
import { handlerFailure } from './handler-failure.js';
import type { WebSocketConverter } from './websocket-converter.js';
import type { FrameReceiver, WebSocketConnection } from './websocket-connection.js';
import type {
  OutgoingChannel,
  WebSocketApplicationContext,
  WebSocketCall,
  WebSocketExtension,
  WebSocketServerSession,
} from './websocket-session.js';
import type { SessionSettings } from './websocket-session-options.js';

/** A route handler; typed loosely here, since each route declares the session type it expects. */
export type SessionHandler<S = never> = (session: S) => unknown;

const frameSize = (frame: Frame): number => frame.data.length;

export abstract class BaseWebSocketSession implements WebSocketServerSession, FrameReceiver {
  protected static readonly logger = new Logger('WebSocketSession');

  readonly incoming: BoundedReceiveChannel<Frame>;
  readonly outgoing: OutgoingChannel = { send: (frame) => this.sendFrame(frame) };
  readonly masking = false;
  readonly extensions: readonly WebSocketExtension[] = [];
  readonly maxFrameSize: number;
  readonly converter: WebSocketConverter;

  constructor(
    protected readonly connection: WebSocketConnection,
    readonly call: WebSocketCall,
    private readonly applicationRef: WebSocketApplicationContext | undefined,
    protected readonly settings: SessionSettings,
  ) {
    this.maxFrameSize = settings.maxFrameSize;
    this.converter = settings.converter;
    connection.setLimits({ maxBufferedBytes: settings.maxBufferedBytes, idleTimeout: settings.idleTimeout });
    this.incoming = new BoundedReceiveChannel<Frame>(
      { capacity: settings.incomingCapacity, maxBytes: settings.incomingMaxBytes },
      frameSize,
      () => connection.pump(),
    );
  }

  get application(): WebSocketApplicationContext {
    if (this.applicationRef === undefined) {
      throw new Error('This session has no application context: pass `application` to WebSocketUpgrade');
    }
    return this.applicationRef;
  }

  get canReceive(): boolean {
    return !this.incoming.full;
  }

  send(content: string | Uint8Array | Frame): Promise<void> {
    const frame =
      typeof content === 'string' ? new Frame.Text(content) : content instanceof Frame ? content : new Frame.Binary(content);
    return this.outgoing.send(frame);
  }

  flush(): Promise<void> {
    return this.connection.flush();
  }

  terminate(): void {
    this.connection.destroy();
  }

  sendSerialized(value: unknown): Promise<void> {
    return this.send(this.converter.serialize(value));
  }

  async receiveDeserialized<T = unknown>(): Promise<T> {
    return this.converter.deserialize(await this.incoming.receive()) as T;
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
  abstract onFrame(frame: Frame): void;
  abstract onClosed(): void;
  protected abstract sendFrame(frame: Frame): Promise<void>;
  /** What the session does with a connection still open when its handler returned (no failure) or failed. */
  protected abstract afterHandler(failure: CloseReason | undefined): Promise<void>;

  onProtocolError(error: WebSocketProtocolError): void {
    BaseWebSocketSession.logger.warn(`Closing ${this.call.path} with ${error.closeCode}: ${error.message}`);
    this.closeConnection(new CloseReason(error.closeCode, error.message));
  }

  /** 1001, not 1008: a quiet peer broke no rule, and 1001 tells clients that reconnecting is fine. */
  onIdleTimeout(): void {
    BaseWebSocketSession.logger.debug(`Closing ${this.call.path}: nothing from the peer for ${this.settings.idleTimeout} ms`);
    this.closeConnection(new CloseReason(CloseCode.GOING_AWAY, 'Idle timeout'));
  }

  /** The Close goes behind what is queued; `end()` drops TCP after the close timeout if the peer still does not read. */
  onSendBufferFull(): void {
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
    if (!this.connection.closeFrameSent) this.connection.write(new Frame.Close(reason)).catch(() => undefined);
    this.connection.end();
  }
}
