/**
 * What a session needs to subscribe to topics, handed to it by whoever
 * tracks it (the sessions registry), and the types of that contract: the
 * session layer knows this port, not the registry, its index or a broker.
 */
import type { WebSocketServerSession } from './websocket-session.js';

/**
 * Where a message stands in its topic's history, as Centrifugo's: `offset` counts the topic's messages
 * from 1, `epoch` names that count. A new epoch means the history was lost (a Redis without persistence
 * restarted, or the topic was idle past its history's ttl) and counting began again.
 */
export interface StreamPosition {
  readonly offset: number;
  readonly epoch: string;
}

export interface SubscribeOptions {
  /**
   * The last position the client saw (on a topic with history): what was published after it is sent
   * first, then live messages, with no gap and no duplicate at the seam.
   */
  since?: StreamPosition;
  /** What presence shows of this subscriber (a user name, say), on a topic with presence; JSON-serializable. */
  data?: unknown;
}

export interface SubscribeResult {
  /** The topic's newest position when the subscription began; on a topic without history, undefined. */
  position: StreamPosition | undefined;
  /**
   * True when `since` was given and everything after it was sent. False otherwise: no `since`, a topic
   * without history, a new epoch, or messages after `since` no longer kept; then send the client full state.
   */
  recovered: boolean;
}

export interface TopicMembership {
  /** Resolves once `session` receives what is published to `topic`; rejects for a bad topic or past the limit. */
  subscribe(session: WebSocketServerSession, topic: string, options: SubscribeOptions | undefined): Promise<SubscribeResult>;
  unsubscribe(session: WebSocketServerSession, topic: string): Promise<void>;
  isSubscribed(session: WebSocketServerSession, topic: string): boolean;
  /** The session ended: it leaves every topic. */
  leaveAll(session: WebSocketServerSession): void;
}
