/**
 * One topic's history in memory, for the in-process broker: the newest
 * `size` messages with their positions and times, in a ring, and the epoch
 * that names this count of offsets.
 */
import { randomUUID } from 'node:crypto';
import type { StreamPosition } from '../session/topic-membership.js';
import type { BrokerMessage, HistoryRead, TopicHistoryOptions } from './websocket-broker.js';

interface Kept {
  readonly message: BrokerMessage;
  readonly at: number;
}

export class MemoryHistory {
  readonly epoch = randomUUID();
  private offset = 0;
  private readonly kept: Kept[] = [];
  /** Where the oldest kept message is in `kept` once the ring is full. */
  private start = 0;

  /** Gives `message` the next position and keeps it, dropping the oldest past `size`. */
  append(message: BrokerMessage, options: TopicHistoryOptions, now: number): BrokerMessage {
    const positioned = { ...message, position: { offset: ++this.offset, epoch: this.epoch } };
    const entry = { message: positioned, at: now };
    if (this.kept.length < options.size) {
      this.kept.push(entry);
    } else {
      this.kept[this.start] = entry;
      this.start = (this.start + 1) % this.kept.length;
    }
    return positioned;
  }

  get top(): StreamPosition {
    return { offset: this.offset, epoch: this.epoch };
  }

  /** The newest message's time, or undefined when nothing was published. */
  get newestAt(): number | undefined {
    return this.kept.length === 0 ? undefined : this.kept[(this.start + this.kept.length - 1) % this.kept.length].at;
  }

  read(since: StreamPosition | undefined, options: TopicHistoryOptions, now: number): HistoryRead {
    if (since === undefined) return { top: this.top, complete: false, messages: [] };
    if (since.epoch !== this.epoch || since.offset > this.offset) return { top: this.top, complete: false, messages: [] };
    const missed = this.offset - since.offset;
    const messages: BrokerMessage[] = [];
    for (let n = this.kept.length - missed; n < this.kept.length; n++) {
      if (n < 0) continue;
      const entry = this.kept[(this.start + n) % this.kept.length];
      if (now - entry.at <= options.ttl) messages.push(entry.message);
    }
    return { top: this.top, complete: messages.length === missed, messages };
  }
}
