/**
 * Which local sessions subscribe to which topics, both ways: topic to
 * subscribers (what a publish walks) and session to topics (what the end of
 * a session clears), so neither costs more than the entries it touches.
 * Only subscribing sessions and topics with subscribers have entries.
 */
export class TopicIndex<S> {
  private readonly subscribersByTopic = new Map<string, Set<S>>();
  private readonly topicsBySession = new Map<S, Set<string>>();

  /** How many topics `session` subscribes to. */
  topicCount(session: S): number {
    return this.topicsBySession.get(session)?.size ?? 0;
  }

  has(session: S, topic: string): boolean {
    return this.topicsBySession.get(session)?.has(topic) ?? false;
  }

  /** The topics `session` subscribes to, copied (leaving them changes the index). */
  topicsOf(session: S): string[] {
    return [...(this.topicsBySession.get(session) ?? [])];
  }

  /** The topic's subscribers, live (copy before sending if a send may end a session). */
  subscribersOf(topic: string): ReadonlySet<S> | undefined {
    return this.subscribersByTopic.get(topic);
  }

  add(session: S, topic: string): void {
    let topics = this.topicsBySession.get(session);
    if (topics === undefined) this.topicsBySession.set(session, (topics = new Set()));
    topics.add(topic);
    let subscribers = this.subscribersByTopic.get(topic);
    if (subscribers === undefined) this.subscribersByTopic.set(topic, (subscribers = new Set()));
    subscribers.add(session);
  }

  remove(session: S, topic: string): void {
    const topics = this.topicsBySession.get(session);
    if (topics === undefined || !topics.delete(topic)) return;
    if (topics.size === 0) this.topicsBySession.delete(session);
    this.leave(session, topic);
  }

  removeAll(session: S): void {
    const topics = this.topicsBySession.get(session);
    if (topics === undefined) return;
    this.topicsBySession.delete(session);
    for (const topic of topics) this.leave(session, topic);
  }

  /** Drops the topic's entry with its last subscriber, so the index holds only topics in use. */
  private leave(session: S, topic: string): void {
    const subscribers = this.subscribersByTopic.get(topic);
    if (subscribers === undefined) return;
    subscribers.delete(session);
    if (subscribers.size === 0) this.subscribersByTopic.delete(topic);
  }
}
