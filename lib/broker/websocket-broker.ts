/**
 * The one thing the sessions registry talks to about other processes
 * (DESIGN.md §4): publishing, interest in a topic, history and presence.
 * `InProcessBroker` implements it with nothing installed; `RedisBroker`
 * (`nest-websocket-routes/redis`) on Redis. Brokers know topics and
 * messages, never sessions.
 */
import type { StreamPosition } from '../session/topic-membership.js';

/** What a topic keeps for recovery (`topics` option of `WebSocketsModule.forRoot`). */
export interface TopicHistoryOptions {
  /** Messages kept: the oldest go first. */
  size: number;
  /** Milliseconds a message stays recoverable after it was published. */
  ttl: number;
}

/** A published message's content: text or binary as bytes, or what `publishSerialized` was given. */
export type TopicPayload =
  | { readonly type: 'text' | 'binary'; readonly bytes: Uint8Array }
  | { readonly type: 'value'; readonly value: unknown };

/** A published message as a broker carries it. */
export interface BrokerMessage {
  readonly topic: string;
  readonly payload: TopicPayload;
  /** The id of a session (`session.id`) not to deliver to: usually the sender. */
  readonly except?: string;
  /** Given by the broker, on topics with history. */
  readonly position?: StreamPosition;
}

/** What a history read found after `since`. */
export interface HistoryRead {
  /** The topic's newest position: offset 0 in a new epoch when nothing was published yet. */
  readonly top: StreamPosition;
  /** Whether `messages` are all that was published after `since`: false for another epoch or messages no longer kept. */
  readonly complete: boolean;
  /** In order; empty without `since`. */
  readonly messages: readonly BrokerMessage[];
}

/** One subscriber in a topic's presence. */
export interface PresenceEntry {
  /** The broker's id of the process that holds the session. */
  readonly process: string;
  /** `session.id`. */
  readonly session: string;
  /** What the session gave as `data` when it subscribed. */
  readonly data?: unknown;
}

export interface PresenceEvent {
  readonly type: 'join' | 'leave';
  readonly topic: string;
  readonly entry: PresenceEntry;
}

/** Where a broker reports what other processes (and this one) did. */
export interface BrokerEvents {
  /** A message published to a topic this process subscribes to (its own publishes included), in the topic's order. */
  message(message: BrokerMessage): void;
  /** A join or leave in the presence of a topic this process subscribes to. */
  presence(event: PresenceEvent): void;
  /** The broker's connection came back after an outage: messages published meanwhile may not have arrived. */
  resumed(): void;
}

export interface WebSocketBroker {
  /** This process, as presence entries name it. */
  readonly processId: string;
  /** Called once at application bootstrap, before any session subscribes; logs through Nest's Logger. */
  start(events: BrokerEvents): Promise<void>;
  /** Called once at application shutdown, after the sessions closed. */
  stop(): Promise<void>;
  /** The first local subscriber came: once this resolves, the topic's messages are delivered to `events.message`. */
  subscribe(topic: string): Promise<void>;
  /** The last local subscriber left. */
  unsubscribe(topic: string): Promise<void>;
  /**
   * Publishes to every process that subscribes to the topic, this one included; resolves once the message was
   * accepted (with its position when the topic keeps `history`), rejects when it was not (it reached nobody).
   */
  publish(message: BrokerMessage, history: TopicHistoryOptions | undefined): Promise<StreamPosition | undefined>;
  /** The topic's newest position, and what was published after `since` when it is given. */
  readHistory(topic: string, since: StreamPosition | undefined, history: TopicHistoryOptions): Promise<HistoryRead>;
  /** A local session joins the topic's presence; the broker reports it to `events.presence` of subscribed processes. */
  join(topic: string, entry: PresenceEntry): Promise<void>;
  leave(topic: string, entry: PresenceEntry): Promise<void>;
  /** The topic's presence across processes. */
  presence(topic: string): Promise<PresenceEntry[]>;
}

/** A broker could not do what was asked (Redis unreachable, say): nothing was published or subscribed. */
export class WebSocketBrokerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'WebSocketBrokerError';
  }
}
