/**
 * The topics of this process: what sessions call when they subscribe (the
 * TopicMembership the registry hands them), with its checks (topic names,
 * maxSubscriptionsPerSession), over the index a publish reads.
 */
import { closedSend } from '../session/channel-errors.js';
import type { TopicMembership } from '../session/topic-membership.js';
import type { WebSocketServerSession } from '../session/websocket-session.js';
import { TopicIndex } from './topic-index.js';
import { checkTopic } from './topic-name.js';

/** Bounds what one session (a peer choosing rooms) can add to the index; raise it for more. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_SESSION = 1_000;

export class LocalTopics implements TopicMembership {
  readonly index = new TopicIndex<WebSocketServerSession>();
  maxSubscriptionsPerSession = DEFAULT_MAX_SUBSCRIPTIONS_PER_SESSION;

  subscribe(session: WebSocketServerSession, topic: string): Promise<void> {
    try {
      checkTopic(topic, 'session.subscribe()');
      // A session that can no longer send would never receive what is published: refused as a send is, quietly.
      if (!session.isActive) return closedSend(`The session has ended: it cannot subscribe to ${JSON.stringify(topic)}`);
      this.add(session, topic);
      return Promise.resolve();
    } catch (error) {
      // The caller's mistake: a visible rejection rather than a throw into the caller's turn.
      return Promise.reject(error);
    }
  }

  private add(session: WebSocketServerSession, topic: string): void {
    if (this.index.has(session, topic)) return;
    if (this.index.topicCount(session) >= this.maxSubscriptionsPerSession) {
      throw new RangeError(
        `session.subscribe(${JSON.stringify(topic)}): the session on ${session.call.path} already subscribes to ` +
          `${this.maxSubscriptionsPerSession} topics (maxSubscriptionsPerSession): unsubscribe from one first, ` +
          'or raise maxSubscriptionsPerSession in WebSocketsModule.forRoot()',
      );
    }
    this.index.add(session, topic);
  }

  async unsubscribe(session: WebSocketServerSession, topic: string): Promise<void> {
    checkTopic(topic, 'session.unsubscribe()');
    this.index.remove(session, topic);
  }

  isSubscribed(session: WebSocketServerSession, topic: string): boolean {
    return this.index.has(session, topic);
  }

  leaveAll(session: WebSocketServerSession): void {
    this.index.removeAll(session);
  }
}
