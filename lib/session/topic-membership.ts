/**
 * What a session needs to subscribe to topics, handed to it by whoever
 * tracks it (the sessions registry): the session layer knows this port,
 * not the registry or its index.
 */
import type { WebSocketServerSession } from './websocket-session.js';

export interface TopicMembership {
  /** Resolves once `session` receives what is published to `topic`; rejects for a bad topic or past the limit. */
  subscribe(session: WebSocketServerSession, topic: string): Promise<void>;
  unsubscribe(session: WebSocketServerSession, topic: string): Promise<void>;
  isSubscribed(session: WebSocketServerSession, topic: string): boolean;
  /** The session ended: it leaves every topic. */
  leaveAll(session: WebSocketServerSession): void;
}
