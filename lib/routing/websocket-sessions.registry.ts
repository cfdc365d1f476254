/**
 * The open sessions of the module's routes: an injectable registry to list
 * and find them (by route and params), send to a set of them, publish to a
 * topic's subscribers in every process (through the broker) and see their
 * presence, and what application shutdown uses to say goodbye to each (1001).
 */
import { Injectable, Logger } from '@nestjs/common';
import { InProcessBroker } from '../broker/in-process.broker.js';
import type { PresenceEntry, PresenceEvent, WebSocketBroker } from '../broker/websocket-broker.js';
import { CloseCode, CloseReason } from '../protocol/close-reason.js';
import { Frame, frameOf } from '../protocol/frame.js';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';
import { quietly } from '../session/channel-errors.js';
import type { WebSocketServerSession } from '../session/websocket-session.js';
import { TopicHub, type PublishResult } from './topic-hub.js';
import { TopicRules } from './topic-options.js';

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
  private topics = new TopicHub(new InProcessBroker(), TopicRules.of(undefined));
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
   * Sends one text (string), binary (bytes) or Text/Binary frame to every session subscribed to `topic` (see
   * `session.subscribe`) in every process of the application that shares the broker (this one alone by
   * default), but `options.except`. Resolves once the broker took it, with its position on a topic with history.
   * Rejects for a bad topic or content; quietly, with `WebSocketBrokerError`, when the broker could not take it
   * (it then reached nobody); and once application shutdown closed the sessions.
   */
  publish(topic: string, content: string | Uint8Array | Frame, options?: PublishOptions): Promise<PublishResult> {
    return this.sessionsShutDown ? this.refuseAfterShutdown(topic, 'publish') : this.topics.publish(topic, content, options?.except, 'publish');
  }

  /**
   * Sends a value to `topic`'s subscribers through each one's converter (JSON by default): `publish` as
   * `broadcastSerialized` is to `broadcast`. Through Redis, the value crosses processes as JSON.
   */
  publishSerialized<T = unknown>(topic: string, value: T, options?: PublishOptions): Promise<PublishResult> {
    return this.sessionsShutDown
      ? this.refuseAfterShutdown(topic, 'publishSerialized')
      : this.topics.publishValue(topic, value, options?.except, 'publishSerialized');
  }

  /** Who subscribes to `topic`, in every process, on a topic whose rule has `presence: true`. */
  presence(topic: string): Promise<PresenceEntry[]> {
    return this.topics.presenceOf(topic, 'presence');
  }

  /** How many subscribe to `topic`, in every process (see `presence`). */
  async presenceCount(topic: string): Promise<number> {
    return (await this.topics.presenceOf(topic, 'presenceCount')).length;
  }

  /**
   * Calls `listener` for each join and leave in the presence of a topic this process has subscribers to,
   * wherever the subscriber is. Returns what stops it.
   */
  onPresence(listener: (event: PresenceEvent) => void): () => void {
    return this.topics.onPresence(listener);
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

  /** @internal The module's options, checked there: before any session is tracked. */
  configureTopics(broker: WebSocketBroker, rules: TopicRules, maxSubscriptionsPerSession: number): void {
    this.topics = new TopicHub(broker, rules, maxSubscriptionsPerSession);
  }

  /** @internal At application bootstrap. */
  startBroker(): Promise<void> {
    return this.topics.startBroker();
  }

  /** @internal At application shutdown, after the sessions closed. */
  stopBroker(): Promise<void> {
    return this.topics.stopBroker();
  }

  /**
   * @internal Application shutdown closed the sessions (their handlers had shutdownTimeout): publishing is
   * refused from now on. Not earlier: a handler's `finally` that tells the room it leaves, while shutdown
   * closes it, is no mistake; those publishes count the closing subscribers as failed.
   */
  endPublishing(): void {
    this.sessionsShutDown = true;
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
