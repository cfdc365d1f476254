/**
 * The topics of this process: what sessions call to subscribe (the
 * TopicMembership the registry hands them), interest in the broker (one
 * broker subscription per topic with local subscribers), delivery of what
 * the broker brings, and on topics with history the two seams: a session
 * recovering from a client's position, and a gap a broker outage left,
 * both read back from the history so nothing is missed or sent twice.
 */
import { Logger } from '@nestjs/common';
import {
  WebSocketBrokerError,
  type BrokerEvents,
  type BrokerMessage,
  type PresenceEntry,
  type PresenceEvent,
  type TopicHistoryOptions,
  type TopicPayload,
  type WebSocketBroker,
} from '../broker/websocket-broker.js';
import { describeValue } from '../protocol/describe-value.js';
import type { Frame } from '../protocol/frame.js';
import { closedSend, quietly } from '../session/channel-errors.js';
import type { StreamPosition, SubscribeOptions, SubscribeResult, TopicMembership } from '../session/topic-membership.js';
import type { WebSocketServerSession } from '../session/websocket-session.js';
import { TopicIndex } from './topic-index.js';
import { checkTopic } from './topic-name.js';
import { MessageFrames, payloadOf } from './topic-frames.js';
import type { TopicOptions, TopicRules } from './topic-options.js';

/** Bounds what one session (a peer choosing rooms) can add to the index; raise it for more. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_SESSION = 1_000;
/**
 * Live messages one topic holds while a history read fills a gap, or one session's while it recovers. Past it
 * the newest are left to the history: the next message shows the gap again and it is read back then.
 */
const MAX_HELD_MESSAGES = 10_000;

type Session = WebSocketServerSession;

/** A topic with subscribers in this process. */
interface TopicState {
  readonly topic: string;
  readonly options: TopicOptions | undefined;
  /** Settles once the broker delivers the topic's messages (rejects when it could not subscribe). */
  readonly ready: Promise<void>;
  /** Presence entries of the local subscribers that joined it. */
  readonly present: Map<Session, PresenceEntry>;
  /** History topics: the newest position delivered here. */
  last: StreamPosition | undefined;
  /** History topics: live messages held, in order, while what came before them is read back. */
  held: BrokerMessage[] | undefined;
  /** History topics: sessions between subscribing and being sent what they missed; their live messages wait here. */
  readonly recovering: Map<Session, BrokerMessage[]>;
  /** History topics: sessions that recovered up to a position live messages here have not reached yet; those up to it are not sent again. */
  readonly ahead: Map<Session, StreamPosition>;
  /** The epoch change was reported (once per topic and epoch). */
  reportedEpoch: string | undefined;
  /** History topics: a failed read-back was logged; quiet until one works, so an outage logs once, not once per live message. */
  readBackFailing: boolean;
}

export interface PublishResult {
  /** The message's position, on a topic with history; undefined otherwise. */
  position: StreamPosition | undefined;
}

export class TopicHub implements TopicMembership, BrokerEvents {
  private readonly logger = new Logger('WebSocketSessions');
  private readonly index = new TopicIndex<Session>();
  private readonly states = new Map<string, TopicState>();
  /** The last interest change asked of the broker per topic, so a subscribe never overtakes the unsubscribe before it. */
  private readonly interest = new Map<string, Promise<void>>();
  private readonly presenceListeners = new Set<(event: PresenceEvent) => void>();

  constructor(
    private readonly broker: WebSocketBroker,
    private readonly rules: TopicRules,
    private readonly maxSubscriptionsPerSession = DEFAULT_MAX_SUBSCRIPTIONS_PER_SESSION,
  ) {}

  /** The broker starts reporting to this hub: at application bootstrap. */
  startBroker(): Promise<void> {
    return this.broker.start(this);
  }

  /** At application shutdown, after the sessions closed. */
  stopBroker(): Promise<void> {
    return this.broker.stop();
  }

  subscribe(session: Session, topic: string, options: SubscribeOptions | undefined): Promise<SubscribeResult> {
    try {
      checkTopic(topic, 'session.subscribe()');
      // A session that can no longer send would never receive what is published: refused as a send is, quietly.
      if (!session.isActive) return closedSend(`The session has ended: it cannot subscribe to ${JSON.stringify(topic)}`);
      checkSubscribeOptions(topic, options, this.states.get(topic)?.options ?? this.rules.for(topic));
      if (this.index.has(session, topic)) return Promise.resolve({ position: this.states.get(topic)?.last, recovered: false });
      this.checkLimit(session, topic);
    } catch (error) {
      // The caller's mistake: a visible rejection rather than a throw into the caller's turn.
      return Promise.reject(error);
    }
    const state = this.stateOf(topic);
    this.index.add(session, topic);
    // A broker that cannot be reached is no mistake of the caller's, and was logged: quiet, as a send to a peer that left.
    return quietly(this.join(session, state, options));
  }

  unsubscribe(session: Session, topic: string): Promise<void> {
    try {
      checkTopic(topic, 'session.unsubscribe()');
    } catch (error) {
      return Promise.reject(error);
    }
    this.leave(session, topic);
    return Promise.resolve();
  }

  isSubscribed(session: Session, topic: string): boolean {
    return this.index.has(session, topic);
  }

  leaveAll(session: Session): void {
    for (const topic of this.index.topicsOf(session)) this.leave(session, topic);
  }

  /**
   * Publishes through the broker. Rejects for the caller's mistakes (a bad topic or content), and quietly with
   * WebSocketBrokerError when the broker could not take it (logged by the broker, once per outage).
   */
  publish(topic: string, content: string | Uint8Array | Frame, except: Session | undefined, method: string): Promise<PublishResult> {
    let payload: TopicPayload;
    try {
      checkTopic(topic, `WebSocketSessions.${method}()`);
      payload = payloadOf(content, method);
    } catch (error) {
      return Promise.reject(error);
    }
    return quietly(this.publishPayload(topic, payload, except, method));
  }

  publishValue(topic: string, value: unknown, except: Session | undefined, method: string): Promise<PublishResult> {
    try {
      checkTopic(topic, `WebSocketSessions.${method}()`);
    } catch (error) {
      return Promise.reject(error);
    }
    return quietly(this.publishPayload(topic, { type: 'value', value }, except, method));
  }

  onPresence(listener: (event: PresenceEvent) => void): () => void {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }

  async presenceOf(topic: string, method: string): Promise<PresenceEntry[]> {
    checkTopic(topic, `WebSocketSessions.${method}()`);
    if (this.rules.for(topic)?.presence !== true) {
      throw new Error(
        `WebSocketSessions.${method}(${JSON.stringify(topic)}): presence is not tracked for this topic: ` +
          'add a rule with presence: true for it to the topics option of WebSocketsModule.forRoot()',
      );
    }
    return this.broker.presence(topic);
  }

  // BrokerEvents

  message(message: BrokerMessage): void {
    const state = this.states.get(message.topic);
    if (state === undefined) return;
    if (state.options?.history === undefined || message.position === undefined) {
      this.deliver(state, message);
      return;
    }
    if (state.held !== undefined) {
      if (state.held.length < MAX_HELD_MESSAGES) state.held.push(message);
      return;
    }
    const last = state.last;
    const position = message.position;
    if (last !== undefined && position.epoch === last.epoch) {
      // Read back already, or sent twice by the broker: once is enough.
      if (position.offset <= last.offset) return;
      if (position.offset > last.offset + 1) {
        this.readBack(state, state.options.history, [message]);
        return;
      }
    } else if (last !== undefined) {
      // Counting began again: from the start of the new epoch, so what came before this message is read back.
      this.reportEpoch(state, position.epoch);
      state.last = { offset: 0, epoch: position.epoch };
      this.message(message);
      return;
    }
    state.last = position;
    this.deliver(state, message);
  }

  /** The broker reports the topics this process subscribes to; a topic's last local leave may come after it left. */
  presence(event: PresenceEvent): void {
    for (const listener of this.presenceListeners) {
      try {
        listener(event);
      } catch (error) {
        this.logger.error(`An onPresence listener threw for ${event.type} in ${JSON.stringify(event.topic)}: ${(error as Error)?.message}`, (error as Error)?.stack);
      }
    }
  }

  resumed(): void {
    for (const state of this.states.values()) {
      const history = state.options?.history;
      if (history !== undefined && state.held === undefined) this.readBack(state, history, []);
    }
  }

  private checkLimit(session: Session, topic: string): void {
    if (this.index.topicCount(session) < this.maxSubscriptionsPerSession) return;
    throw new RangeError(
      `session.subscribe(${JSON.stringify(topic)}): the session on ${session.call.path} already subscribes to ` +
        `${this.maxSubscriptionsPerSession} topics (maxSubscriptionsPerSession): unsubscribe from one first, ` +
        'or raise maxSubscriptionsPerSession in WebSocketsModule.forRoot()',
    );
  }

  /** The topic's state, made (and the broker's interest asked for) with its first local subscriber. */
  private stateOf(topic: string): TopicState {
    const existing = this.states.get(topic);
    if (existing !== undefined) return existing;
    const options = this.rules.for(topic);
    const state: TopicState = {
      topic,
      options,
      ready: undefined as unknown as Promise<void>,
      present: new Map(),
      last: undefined,
      // History topics hold live messages until what came before the subscription was read.
      held: options?.history === undefined ? undefined : [],
      recovering: new Map(),
      ahead: new Map(),
      reportedEpoch: undefined,
      readBackFailing: false,
    };
    const previous = this.interest.get(topic) ?? Promise.resolve();
    // After the change before it, whether or not that one worked.
    const ready = previous.catch(() => undefined).then(() => this.startInterest(state));
    (state as { ready: Promise<void> }).ready = quietly(ready);
    this.interest.set(topic, quietly(ready));
    this.states.set(topic, state);
    return state;
  }

  private async startInterest(state: TopicState): Promise<void> {
    const history = state.options?.history;
    if (history === undefined) {
      await this.broker.subscribe(state.topic);
      return;
    }
    // The position before subscribing: what is published after it reaches this process, live or read back.
    state.last = (await this.broker.readHistory(state.topic, undefined, history)).top;
    await this.broker.subscribe(state.topic);
    await this.readBack(state, history, state.held ?? []);
  }

  private async join(session: Session, state: TopicState, options: SubscribeOptions | undefined): Promise<SubscribeResult> {
    const history = state.options?.history;
    // From now on, its live messages wait until it was sent what it missed (or, without `since`, the position is known).
    if (history !== undefined) state.recovering.set(session, []);
    try {
      await state.ready;
      // It left (or left and came back, which is another join) while the broker's interest was being asked for:
      // joining presence now would leave an entry nobody removes.
      if (!this.index.has(session, state.topic) || this.states.get(state.topic) !== state) {
        state.recovering.delete(session);
        return { position: state.last, recovered: false };
      }
      if (state.options?.presence === true) {
        const entry: PresenceEntry = { process: this.broker.processId, session: session.id, data: options?.data };
        state.present.set(session, entry);
        await this.broker.join(state.topic, entry);
      }
      if (history === undefined) return { position: undefined, recovered: false };
      const since = options?.since;
      const read = await this.broker.readHistory(state.topic, since, history);
      return this.finishRecovery(session, state, since, read.complete ? read.messages : undefined);
    } catch (error) {
      state.recovering.delete(session);
      this.leave(session, state.topic);
      throw new WebSocketBrokerError(`session.subscribe(${JSON.stringify(state.topic)}) failed: ${(error as Error)?.message}`, { cause: error });
    }
  }

  /**
   * The seam of a subscription on a history topic. Everything up to the position this process reached is
   * either in `missed` (read from the history) or among the live messages that waited; what comes after
   * reaches the session live. Recovered: it is sent both, in order, nothing twice. Not recovered: it is
   * sent nothing up to that position, which the result gives, so the app sends the client state as of it.
   * A `since` past that position (the history is ahead of live messages here) is where the session stands.
   */
  private finishRecovery(
    session: Session,
    state: TopicState,
    since: StreamPosition | undefined,
    missed: readonly BrokerMessage[] | undefined,
  ): SubscribeResult {
    const waiting = state.recovering.get(session) ?? [];
    state.recovering.delete(session);
    const reached = state.last;
    if (since === undefined || missed === undefined || reached === undefined || !this.index.has(session, state.topic)) {
      return { position: reached, recovered: false };
    }
    let sentUpTo = since;
    for (const message of missed) {
      const position = message.position!;
      // Newer than this process reached: it comes live, to the session as to the others.
      if (isAfter(position, reached)) break;
      this.sendTo(session, state, message);
      sentUpTo = position;
    }
    for (const message of waiting) {
      if (isAfter(message.position!, sentUpTo)) this.sendTo(session, state, message);
    }
    if (isAfter(sentUpTo, reached)) state.ahead.set(session, sentUpTo);
    return { position: reached, recovered: true };
  }

  /**
   * Reads what was published after `state.last` and delivers it, then the live messages `held` behind it.
   * A history that no longer has all of it (trimmed, or a new epoch) is logged: those messages are lost here.
   */
  private async readBack(state: TopicState, history: TopicHistoryOptions, held: BrokerMessage[]): Promise<void> {
    state.held = held;
    try {
      let read = await this.broker.readHistory(state.topic, state.last, history);
      if (!read.complete && state.last !== undefined && read.top.epoch !== state.last.epoch) {
        // The history was lost and counting began again: what the new epoch has is read from its start.
        this.reportEpoch(state, read.top.epoch);
        state.last = { offset: 0, epoch: read.top.epoch };
        read = await this.broker.readHistory(state.topic, state.last, history);
      }
      if (!read.complete) {
        this.logger.warn(
          `Topic ${JSON.stringify(state.topic)}: messages after offset ${state.last?.offset} were no longer in its history ` +
            '(size or ttl too small for the outage, or a new epoch); subscribers here missed them',
        );
        const oldestKept = read.messages[0]?.position;
        // Just before the oldest message still kept, so that one is delivered too rather than taken as already sent.
        state.last = oldestKept === undefined ? read.top : { offset: oldestKept.offset - 1, epoch: oldestKept.epoch };
      }
      state.held = undefined;
      state.readBackFailing = false;
      for (const message of read.messages) this.message(message);
    } catch (error) {
      state.held = undefined;
      if (!state.readBackFailing) this.logger.warn(`Topic ${JSON.stringify(state.topic)}: could not read back missed messages: ${(error as Error)?.message}`);
      state.readBackFailing = true;
      // Not checked again now: each would show the same gap and fail the same way at once, a loop of promise
      // callbacks that starves the event loop (the broker never reconnects). They are in the history: the next
      // message's gap, or resumed() once the broker is back, reads them back.
      return;
    }
    // Each held message is checked again: a gap still there (messages past the held limit) is read back.
    for (const message of held) this.message(message);
  }

  private reportEpoch(state: TopicState, epoch: string): void {
    if (state.reportedEpoch === epoch) return;
    state.reportedEpoch = epoch;
    this.logger.warn(
      `Topic ${JSON.stringify(state.topic)} began a new epoch (${epoch}): its history was lost (a broker restarted ` +
        'without persistence, or it was idle past its ttl); messages may have been missed. Clients see the new epoch in positions',
    );
  }

  private deliver(state: TopicState, message: BrokerMessage): void {
    const subscribers = this.index.subscribersOf(state.topic);
    if (subscribers === undefined) return;
    const frames = new MessageFrames(state.options, message, this.logger);
    // A copy: a send may end a session, which leaves the index.
    for (const session of [...subscribers]) {
      if (message.except !== undefined && session.id === message.except) continue;
      if (state.ahead.size > 0 && this.sentAhead(state, session, message)) continue;
      const waiting = state.recovering.get(session);
      if (waiting === undefined) frames.sendTo(session);
      else if (waiting.length < MAX_HELD_MESSAGES) waiting.push(message);
    }
  }

  /** Whether the session recovered past this live message already; once one passes where it stands, it is live as the others. */
  private sentAhead(state: TopicState, session: Session, message: BrokerMessage): boolean {
    const ahead = state.ahead.get(session);
    if (ahead === undefined) return false;
    if (message.position !== undefined && !isAfter(message.position, ahead)) return true;
    state.ahead.delete(session);
    return false;
  }

  private sendTo(session: Session, state: TopicState, message: BrokerMessage): void {
    if (message.except !== undefined && session.id === message.except) return;
    new MessageFrames(state.options, message, this.logger).sendTo(session);
  }

  private leave(session: Session, topic: string): void {
    if (!this.index.has(session, topic)) return;
    this.index.remove(session, topic);
    const state = this.states.get(topic);
    if (state === undefined) return;
    state.recovering.delete(session);
    state.ahead.delete(session);
    const entry = state.present.get(session);
    if (entry !== undefined) {
      state.present.delete(session);
      this.broker.leave(topic, entry).catch((error: unknown) => this.logger.warn(`Could not leave the presence of ${JSON.stringify(topic)}: ${(error as Error)?.message}`));
    }
    if (this.index.subscribersOf(topic) !== undefined) return;
    // The last local subscriber left: the broker stops sending the topic here, after any subscribe still on its way.
    this.states.delete(topic);
    const after = state.ready.catch(() => undefined).then(() => this.broker.unsubscribe(topic));
    const settled = quietly(after.catch((error: unknown) => this.logger.warn(`Could not unsubscribe from ${JSON.stringify(topic)}: ${(error as Error)?.message}`)));
    this.interest.set(topic, settled);
    settled.then(() => {
      if (this.interest.get(topic) === settled) this.interest.delete(topic);
    });
  }

  private async publishPayload(topic: string, payload: TopicPayload, except: Session | undefined, method: string): Promise<PublishResult> {
    const history = this.rules.for(topic)?.history;
    const message: BrokerMessage = except === undefined ? { topic, payload } : { topic, payload, except: except.id };
    let position: StreamPosition | undefined;
    try {
      position = await this.broker.publish(message, history);
    } catch (error) {
      throw new WebSocketBrokerError(
        `WebSocketSessions.${method}(${JSON.stringify(topic)}) was not published (it reached nobody): ${(error as Error)?.message}`,
        { cause: error },
      );
    }
    return { position };
  }
}

/** Whether `position` comes after `than` in its topic; a position of another epoch does (a new count began). */
function isAfter(position: StreamPosition, than: StreamPosition): boolean {
  return position.epoch !== than.epoch || position.offset > than.offset;
}

function checkSubscribeOptions(topic: string, options: SubscribeOptions | undefined, rule: TopicOptions | undefined): void {
  if (options === undefined) return;
  const at = `session.subscribe(${JSON.stringify(topic)})`;
  if (options.data !== undefined && rule?.presence !== true) {
    throw new TypeError(`${at}: data is what presence shows, and this topic has none: add a rule with presence: true for it to the topics option`);
  }
  const since = options.since;
  if (since === undefined) return;
  if (typeof since !== 'object' || since === null || !Number.isSafeInteger(since.offset) || since.offset < 0 || typeof since.epoch !== 'string') {
    throw new TypeError(`${at}: since must be a position { offset, epoch } as a message's position gave it, got ${describeValue(since)}`);
  }
}
