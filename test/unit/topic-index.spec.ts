/**
 * The topic index on its own, and the registry's publish over it with
 * 100 000 light fake sessions on 10 000 topics: a publish touches its
 * topic's subscribers and no other session (counted, not timed).
 */
import { WebSocketSessions } from '../../lib/routing/websocket-sessions.registry.js';
import { TopicIndex } from '../../lib/routing/topic-index.js';
import type { BaseWebSocketSession } from '../../lib/session/base-websocket-session.js';
import type { SubscribeResult, TopicMembership } from '../../lib/session/topic-membership.js';

describe('TopicIndex', () => {
  it('maps topics to subscribers and back, and drops a topic with its last subscriber', () => {
    const index = new TopicIndex<string>();
    index.add('ann', 'news');
    index.add('ann', 'sport');
    index.add('ben', 'news');
    index.add('ben', 'news');
    expect([...(index.subscribersOf('news') ?? [])]).toEqual(['ann', 'ben']);
    expect(index.topicCount('ann')).toBe(2);
    expect(index.topicCount('ben')).toBe(1);
    expect(index.has('ben', 'sport')).toBe(false);

    index.remove('ann', 'news');
    expect([...(index.subscribersOf('news') ?? [])]).toEqual(['ben']);
    expect(index.has('ann', 'news')).toBe(false);
    index.remove('ann', 'never');
    index.removeAll('ann');
    expect(index.topicCount('ann')).toBe(0);
    expect(index.subscribersOf('sport')).toBeUndefined();
    index.remove('ben', 'news');
    expect(index.subscribersOf('news')).toBeUndefined();
    expect(index.topicCount('ben')).toBe(0);
  });
});

/** As little of a session as subscribing and publishing use; counts every property the registry reads. */
class FakeSession {
  touches = 0;
  sends = 0;
  private membership: TopicMembership | undefined;
  readonly call = { path: '/fake' };
  readonly isActive = true;

  joinTopics(membership: TopicMembership): void {
    this.membership = membership;
  }

  subscribe(topic: string): Promise<SubscribeResult> {
    return this.membership!.subscribe(this as never, topic, undefined);
  }

  isSubscribed(topic: string): boolean {
    return this.membership!.isSubscribed(this as never, topic);
  }
}

/** Counts reads of any property once the test starts counting, so a scan over all sessions shows. */
function counted(session: FakeSession, counting: { on: boolean }): FakeSession {
  return new Proxy(session, {
    get(target, property, receiver) {
      if (counting.on && property !== 'touches' && property !== 'sends') target.touches++;
      if (property === 'send') {
        return () => {
          target.sends++;
          return Promise.resolve();
        };
      }
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

describe('WebSocketSessions.publish over the index', () => {
  const SESSIONS = 100_000;
  const TOPICS = 10_000;

  it(`touches only the topic's subscribers among ${SESSIONS} sessions on ${TOPICS} topics`, async () => {
    const registry = new WebSocketSessions();
    await registry.startBroker();
    const counting = { on: false };
    const sessions = Array.from({ length: SESSIONS }, () => counted(new FakeSession(), counting));
    const lease = { over: Promise.resolve() };
    for (const [n, session] of sessions.entries()) {
      registry.track(session as unknown as BaseWebSocketSession, lease);
      await session.subscribe(`topic-${n % TOPICS}`);
    }

    counting.on = true;
    expect(await registry.publish('topic-42', 'hello')).toEqual({ position: undefined });
    const reached = sessions.flatMap((session, n) => (session.sends > 0 ? [n] : []));
    expect(reached).toEqual(Array.from({ length: SESSIONS / TOPICS }, (_, k) => 42 + k * TOPICS));
    const touched = sessions.flatMap((session, n) => (session.touches > 0 ? [n] : []));
    expect(touched).toEqual(Array.from({ length: SESSIONS / TOPICS }, (_, k) => 42 + k * TOPICS));
  });
});
