/**
 * The session types handed to route handlers, as Ktor's: `WebSocketSession`
 * (what every session can do), `DefaultWebSocketSession` (pings, timeouts,
 * close handshake), and their server flavours carrying the upgrade call.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Type } from '@nestjs/common';
import type { ContextId } from '@nestjs/core';
import type { CloseReason } from '../protocol/close-reason.js';
import type { Frame } from '../protocol/frame.js';
import type { WebSocketExtension } from '../protocol/websocket-extension.js';
import type { ReceiveChannel } from './receive-channel.js';
import type { WebSocketConverter } from './websocket-converter.js';
import type { SubscribeOptions, SubscribeResult } from './topic-membership.js';

export interface OutgoingChannel {
  /** Queues a frame for the wire; resolves when the socket can take more. */
  send(frame: Frame): Promise<void>;
}

export interface WebSocketSession {
  /** Frames from the peer; reading it is what pulls bytes off the socket. Ends when the connection closes. */
  readonly incoming: ReceiveChannel<Frame>;
  readonly outgoing: OutgoingChannel;
  /** Largest frame (and, in default sessions, reassembled message) accepted, in bytes. */
  readonly maxFrameSize: number;
  /** Whether outgoing frames are masked: always false on the server (RFC 6455 §5.1). */
  readonly masking: boolean;
  readonly extensions: readonly WebSocketExtension[];
  readonly converter: WebSocketConverter;
  /**
   * Whether the session may still send, as Ktor's `isActive`: true from the 101 on, false for good once
   * the connection closed, a Close frame went out (a default session: once it began closing, when either
   * side asked), or sends were refused because the peer does not read (`maxBufferedBytes`).
   *
   * Once it is false, sends fail with `ClosedSendChannelError` (a default session that began closing
   * because of the peer still lets out what is sent in that same turn, ahead of its Close). Code that sends
   * without awaiting (a timer, an event, a loop over sessions) may check it first to skip the work:
   * `if (session.isActive) session.send(update)`. It need not for safety: a send nobody awaits never
   * becomes an unhandled rejection, whenever the peer left.
   */
  readonly isActive: boolean;

  /**
   * Sends a text (string), binary (bytes) or any frame; resolves when the socket can take more.
   * Rejects with `ClosedSendChannelError` once the connection is gone or closing; not awaited, that
   * rejection is dropped (never an unhandled rejection). Content that is not text or bytes rejects with a TypeError.
   */
  send(content: string | Uint8Array | Frame): Promise<void>;
  /** Resolves when everything sent so far has been handed to the operating system, or the connection is gone. */
  flush(): Promise<void>;
  /**
   * Sends a Close frame (1000 by default). A default session then runs the close handshake, and resolves
   * once its Close was handed on (at once if it was closing or closed already). A raw session's close is a
   * send: it rejects, as `send` does, once the connection is gone or a Close went out. Rejects with a
   * RangeError for a code that may not be sent (1004-1006, 1015-2999, or outside 1000-4999).
   */
  close(reason?: CloseReason): Promise<void>;
  /** Drops the TCP connection at once, with no close handshake. */
  terminate(): void;
  /** Sends `value` through `converter` (JSON by default), as `send`; rejects with the converter's error when it cannot serialize it. */
  sendSerialized(value: unknown): Promise<void>;
  receiveDeserialized<T = unknown>(): Promise<T>;
}

export interface DefaultWebSocketSession extends WebSocketSession {
  /** Milliseconds between pings; 0 turns the pinger off. Settable while running. */
  pingIntervalMillis: number;
  /** Milliseconds to wait for the pong before closing with 1011. Settable while running. */
  timeoutMillis: number;
  /** How the session closed: the first close reason sent or received; 1006 when the TCP connection dropped. */
  readonly closeReason: Promise<CloseReason | null>;
}

/** The upgrade request a server session came from. */
export interface WebSocketCall {
  readonly request: IncomingMessage;
  /** The path pattern of the route that accepted it (`/chat/rooms/:room`); the request path for a WebSocketUpgrade. */
  readonly route: string;
  /** The request path, without the query string. */
  readonly path: string;
  /** Values of the route's `:params`. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | string[]>>;
  readonly headers: IncomingHttpHeaders;
  /** The negotiated subprotocol, if any. */
  readonly protocol: string | undefined;
}

/**
 * What `session.application` offers, as Nest's application context does:
 * providers looked up anywhere in the module graph unless `strict` is set.
 * A Nest application (`app`) fits this shape.
 */
export interface WebSocketApplicationContext {
  get<T = any>(typeOrToken: Type<T> | Function | string | symbol, options?: { strict?: boolean }): T;
  resolve<T = any>(
    typeOrToken: Type<T> | Function | string | symbol,
    contextId?: ContextId,
    options?: { strict?: boolean },
  ): Promise<T>;
}

export interface WebSocketServerSession extends WebSocketSession {
  readonly call: WebSocketCall;
  /** The Nest application context: `session.application.get(SomeService)`. */
  readonly application: WebSocketApplicationContext;
  /** A unique id (a random UUID): what presence entries and other processes know the session by. */
  readonly id: string;
  /**
   * From now on, what `WebSocketSessions.publish(topic, ...)` publishes in any process of the application
   * (with a broker shared by them, one alone by default) reaches this session, until `unsubscribe(topic)` or the
   * session's end; with `since`, what it missed first. Subscribing twice is once. Rejects with a TypeError for a
   * topic that is not a non-empty string, a RangeError for one over 256 bytes of UTF-8 or past
   * `maxSubscriptionsPerSession`, a `WebSocketBrokerError` when the broker cannot be reached; once the session
   * ended, with `ClosedSendChannelError`, quietly (as a send).
   */
  subscribe(topic: string, options?: SubscribeOptions): Promise<SubscribeResult>;
  /** Stops what is published to `topic` from reaching this session; nothing happens if it was not subscribed. */
  unsubscribe(topic: string): Promise<void>;
  isSubscribed(topic: string): boolean;
}

export interface DefaultWebSocketServerSession extends DefaultWebSocketSession, WebSocketServerSession {}
