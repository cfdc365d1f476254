/**
 * The default broker: one process is the whole application. Publishing
 * hands the message straight back to this process's topics, history lives
 * in memory (lost with the process: a restart is a new epoch) and presence
 * is this process's subscribers. Nothing to install or configure.
 */
import { randomUUID } from 'node:crypto';
import type { StreamPosition } from '../session/topic-membership.js';
import { MemoryHistory } from './memory-history.js';
import type {
  BrokerEvents,
  BrokerMessage,
  HistoryRead,
  PresenceEntry,
  TopicHistoryOptions,
  WebSocketBroker,
} from './websocket-broker.js';

/**
 * How often histories nobody subscribes to, whose newest message is past its ttl, are dropped, so idle
 * topics hold no memory. A topic with subscribers keeps its epoch: they would take a new one for lost messages.
 */
const SWEEP_INTERVAL_MS = 30_000;

export class InProcessBroker implements WebSocketBroker {
  readonly processId = randomUUID();
  private events: BrokerEvents | undefined;
  private readonly subscribed = new Set<string>();
  private readonly histories = new Map<string, { history: MemoryHistory; ttl: number }>();
  private readonly presenceByTopic = new Map<string, Map<string, PresenceEntry>>();
  private sweeper: NodeJS.Timeout | undefined;

  async start(events: BrokerEvents): Promise<void> {
    this.events = events;
    this.sweeper = setInterval(() => this.dropIdleHistories(Date.now()), SWEEP_INTERVAL_MS).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
  }

  async subscribe(topic: string): Promise<void> {
    this.subscribed.add(topic);
  }

  async unsubscribe(topic: string): Promise<void> {
    this.subscribed.delete(topic);
  }

  async publish(message: BrokerMessage, history: TopicHistoryOptions | undefined): Promise<StreamPosition | undefined> {
    const published = history === undefined ? message : this.historyOf(message.topic, history).append(message, history, Date.now());
    if (this.subscribed.has(message.topic)) this.events?.message(published);
    return published.position;
  }

  async readHistory(topic: string, since: StreamPosition | undefined, history: TopicHistoryOptions): Promise<HistoryRead> {
    return this.historyOf(topic, history).read(since, history, Date.now());
  }

  async join(topic: string, entry: PresenceEntry): Promise<void> {
    let entries = this.presenceByTopic.get(topic);
    if (entries === undefined) this.presenceByTopic.set(topic, (entries = new Map()));
    entries.set(entry.session, entry);
    this.events?.presence({ type: 'join', topic, entry });
  }

  async leave(topic: string, entry: PresenceEntry): Promise<void> {
    const entries = this.presenceByTopic.get(topic);
    if (entries === undefined || !entries.delete(entry.session)) return;
    if (entries.size === 0) this.presenceByTopic.delete(topic);
    this.events?.presence({ type: 'leave', topic, entry });
  }

  async presence(topic: string): Promise<PresenceEntry[]> {
    return [...(this.presenceByTopic.get(topic)?.values() ?? [])];
  }

  private historyOf(topic: string, options: TopicHistoryOptions): MemoryHistory {
    let kept = this.histories.get(topic);
    if (kept === undefined) this.histories.set(topic, (kept = { history: new MemoryHistory(), ttl: options.ttl }));
    return kept.history;
  }

  private dropIdleHistories(now: number): void {
    for (const [topic, { history, ttl }] of this.histories) {
      const newestAt = history.newestAt;
      if (!this.subscribed.has(topic) && (newestAt === undefined || now - newestAt > ttl)) this.histories.delete(topic);
    }
  }
}
