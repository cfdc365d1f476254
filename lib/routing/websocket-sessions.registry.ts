/**
 * The open sessions of the module's routes: an injectable registry to list
 * and find them (by route and params), send to a set of them or publish to
 * a topic's subscribers, and what application shutdown uses to say goodbye
 * to each (1001).
 */
import { Injectable, Logger } from '@nestjs/common';
import { CloseCode, CloseReason } from '../protocol/close-reason.js';
import { Frame, frameOf } from '../protocol/frame.js';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';
import { quietly } from '../session/channel-errors.js';
import type { WebSocketServerSession } from '../session/websocket-session.js';
import { LocalTopics } from './local-topics.js';
import { checkTopic } from './topic-name.js';

/** Which sessions: every condition given must hold. */
export interface WebSocketSessionsFilter {
  /** The route's path pattern as mapped, with prefixes: `/chat/rooms/:room`. */
  route?: string;
  /** Values the route's params must have: `{ room: 'lobby' }`. */
  params?: Readonly<Record<string, string>>;
  /** The negotiated subprotocol. */
  protocol?: string;
}

export type WebSocketSessionsSelector<S extends WebSocketServerSession = WebSocketServerSession> =
  | WebSocketSessionsFilter
  | ((session: S) => boolean);

/** What a broadcast did: sessions it reached, and sessions whose send failed (they were closing). */
export interface BroadcastResult {
  sent: number;
  failed: number;
}

export interface PublishOptions {
  /** A session not to send to, though it subscribes: usually the sender. */
  except?: WebSocketServerSession;
}

/** @internal What the registry holds for a session: `over` is asked for only at shutdown. */
export interface SessionLease {
  readonly over: Promise<void>;
}

@Injectable()
export class WebSocketSessions {
  /** Open sessions in the order they opened, each with what tells of its end. */
  private readonly running = new Map<BaseWebSocketSession, SessionLease>();
  private readonly topics = new LocalTopics();
  /** Application shutdown closed the sessions: publishing is over (warned once). */
  private sessionsShutDown = false;
  private publishAfterShutdownWarned = false;
  private readonly logger = new Logger('WebSocketSessions');

  /** How many sessions are open. */
  get size(): number {
    return this.running.size;
  }

  /** The open sessions that match, in the order they opened; all of them without a selector. */
  list<S extends WebSocketServerSession = WebSocketServerSession>(selector?: WebSocketSessionsSelector<S>): S[] {
    const sessions = [...this.running.keys()] as unknown as S[];
    return selector === undefined ? sessions : sessions.filter(matcherOf(selector));
  }

  /** The first open session that matches. */
  find<S extends WebSocketServerSession = WebSocketServerSession>(selector: WebSocketSessionsSelector<S>): S | undefined {
    const matches = matcherOf(selector);
    for (const session of this.running.keys()) {
      if (matches(session as unknown as S)) return session as unknown as S;
    }
    return undefined;
  }

  /**
   * Sends one text (string), binary (bytes) or frame to every selected
   * session, all at once; resolves when each send resolved or failed. A
   * session that is closing counts as failed and does not fail the others,
   * so the promise never rejects for a peer that left: not awaiting it is
   * safe. It rejects only for the caller's mistakes (a selector that throws,
   * content that is no text nor bytes). Local: it reaches the sessions of
   * this process only; `publish` to a topic is the way to a room.
   */
  async broadcast<S extends WebSocketServerSession = WebSocketServerSession>(
    selector: WebSocketSessionsSelector<S> | Iterable<S>,
    content: string | Uint8Array | Frame,
  ): Promise<BroadcastResult> {
    // `async`: a selector that throws rejects the call instead of throwing into the caller's turn.
    // One frame for all: the payload is encoded once, and server frames are never masked, so never changed.
    const frame = frameOf(content);
    return settle(this.select(selector).map((session) => session.send(frame)));
  }

  /**
   * Sends a value through the selected sessions' converter (JSON by default), as `sendSerialized`;
   * a converter that throws counts as failed sends. Resolves as `broadcast` does.
   */
  async broadcastSerialized<T = unknown>(
    selector: WebSocketSessionsSelector | Iterable<WebSocketServerSession>,
    value: T,
  ): Promise<BroadcastResult> {
    return sendSerialized(this.select(selector), value);
  }

  /**
   * Sends one text (string), binary (bytes) or frame to every session of this process subscribed to
   * `topic` (see `session.subscribe`), but `options.except`; resolves as `broadcast` does, never
   * rejecting for a subscriber that left. Topics are per process for now: other instances of the
   * application do not receive it. Rejects for a bad topic or content, and once application shutdown closed the sessions.
   */
  publish(topic: string, content: string | Uint8Array | Frame, options?: PublishOptions): Promise<BroadcastResult> {
    return this.sessionsShutDown ? this.refuseAfterShutdown(topic, 'publish') : this.publishFrame(topic, content, options);
  }

  /** Sends a value to `topic`'s subscribers through their converter (JSON by default): `publish` as `broadcastSerialized` is to `broadcast`. */
  publishSerialized<T = unknown>(topic: string, value: T, options?: PublishOptions): Promise<BroadcastResult> {
    return this.sessionsShutDown ? this.refuseAfterShutdown(topic, 'publishSerialized') : this.publishValue(topic, value, options);
  }

  /**
   * Closes every session open now (1001 by default), waits up to `timeoutMs`
   * for their handlers to finish, then drops those still open.
   */
  async closeAll(timeoutMs: number, reason = new CloseReason(CloseCode.GOING_AWAY, 'Server is shutting down')): Promise<void> {
    // The sessions open now: one that opens while this waits is not this call's to end.
    const closing = [...this.running];
    if (closing.length === 0) return;
    for (const [session] of closing) session.close(reason).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.allSettled(closing.map(([, lease]) => lease.over)), timeout]);
    clearTimeout(timer);
    // Not awaited after this: a handler that never returns would hold the shutdown forever.
    for (const [session] of closing) if (this.running.has(session)) session.terminate();
  }

  /** @internal Registers an accepted session; its lease's `over` settles once it was untracked (its handler and connection are done). */
  track(session: BaseWebSocketSession, lease: SessionLease): void {
    this.running.set(session, lease);
    session.joinTopics(this.topics);
  }

  /** @internal */
  untrack(session: BaseWebSocketSession): void {
    this.running.delete(session);
  }

  /** @internal The module's option, checked there. */
  setMaxSubscriptionsPerSession(limit: number): void {
    this.topics.maxSubscriptionsPerSession = limit;
  }

  /**
   * @internal Application shutdown closed the sessions (their handlers had shutdownTimeout): publishing is
   * refused from now on. Not earlier: a handler's `finally` that tells the room it leaves, while shutdown
   * closes it, is no mistake; those publishes count the closing subscribers as failed.
   */
  endPublishing(): void {
    this.sessionsShutDown = true;
  }

  private async publishFrame(topic: string, content: string | Uint8Array | Frame, options?: PublishOptions): Promise<BroadcastResult> {
    // `async`: a bad topic or content rejects the call instead of throwing into the caller's turn.
    const subscribers = this.subscribersFor(topic, 'publish', options);
    // One frame for all subscribers, as broadcast does; made even for none, so bad content always rejects.
    const frame = frameOf(content);
    return settle(subscribers.map((session) => session.send(frame)));
  }

  private async publishValue(topic: string, value: unknown, options?: PublishOptions): Promise<BroadcastResult> {
    return sendSerialized(this.subscribersFor(topic, 'publishSerialized', options), value);
  }

  /** The sessions a publish sends to, copied (a send may end a session, which leaves the index); throws for a bad topic. */
  private subscribersFor(topic: string, method: string, options: PublishOptions | undefined): WebSocketServerSession[] {
    checkTopic(topic, `WebSocketSessions.${method}()`);
    const subscribers = [...(this.topics.index.subscribersOf(topic) ?? [])];
    const except = options?.except;
    return except === undefined ? subscribers : subscribers.filter((session) => session !== except);
  }

  /**
   * A timer or event that publishes without awaiting must not crash the process on its way down: the
   * error is logged once and rejects quietly; whoever awaits the publish still sees it.
   */
  private refuseAfterShutdown(topic: string, method: string): Promise<never> {
    const error = new Error(
      `WebSocketSessions.${method}(${JSON.stringify(topic)}) after application shutdown closed the sessions: there is nobody to publish to. ` +
        'Stop what publishes (timers, subscriptions to events) in onModuleDestroy, which runs before',
    );
    if (!this.publishAfterShutdownWarned) {
      this.publishAfterShutdownWarned = true;
      this.logger.warn(error.message);
    }
    return quietly(Promise.reject(error));
  }

  private select<S extends WebSocketServerSession>(selector: WebSocketSessionsSelector<S> | Iterable<S>): S[] {
    return isIterable(selector) ? [...selector] : this.list(selector);
  }
}

/** Through each session's converter: once per converter (routes may set their own), so usually once. */
function sendSerialized(sessions: WebSocketServerSession[], value: unknown): Promise<BroadcastResult> {
  const frames = new Map<WebSocketServerSession['converter'], Frame>();
  return settle(
    // Inside each send's promise, so a converter that throws counts as failed sends.
    sessions.map(async (session) => {
      let frame = frames.get(session.converter);
      if (frame === undefined) frames.set(session.converter, (frame = session.converter.serialize(value)));
      await session.send(frame);
    }),
  );
}

function isIterable<T>(value: unknown): value is Iterable<T> {
  return typeof (value as Iterable<T> | undefined)?.[Symbol.iterator] === 'function';
}

function matcherOf<S extends WebSocketServerSession>(selector: WebSocketSessionsSelector<S>): (session: S) => boolean {
  if (typeof selector === 'function') return selector;
  const { route, params, protocol } = selector;
  const wanted = params === undefined ? [] : Object.entries(params);
  return (session) =>
    (route === undefined || session.call.route === route) &&
    (protocol === undefined || session.call.protocol === protocol) &&
    wanted.every(([name, value]) => session.call.params[name] === value);
}

async function settle(sends: Array<Promise<void>>): Promise<BroadcastResult> {
  const results = await Promise.allSettled(sends);
  const failed = results.filter((result) => result.status === 'rejected').length;
  return { sent: results.length - failed, failed };
}
