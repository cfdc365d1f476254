/**
 * A bounded, single-consumer queue that a session's `incoming` is made of.
 * Bounded by item count and by bytes: once full, the producer stops reading
 * the socket until the consumer takes something (backpressure).
 */
import { ClosedReceiveChannelError } from './channel-errors.js';

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

export interface ReceiveChannelLimits {
  /** Most items queued at once. */
  capacity: number;
  /** Most payload bytes queued at once; one item is always accepted into an empty queue. */
  maxBytes: number;
}

/** What a handler sees of `incoming`: the consumer side only. */
export interface ReceiveChannel<T> extends AsyncIterable<T> {
  /** True once the connection ended and every queued item was taken. */
  readonly isClosedForReceive: boolean;
  /** The next item; rejects with ClosedReceiveChannelError once the channel is closed and empty. */
  receive(): Promise<T>;
  /** The next item, or undefined when none is queued. */
  tryReceive(): T | undefined;
}

export class BoundedReceiveChannel<T> implements ReceiveChannel<T> {
  private readonly items: T[] = [];
  private head = 0;
  private queuedBytes = 0;
  private waiter: Waiter<T> | undefined;
  private closed = false;

  constructor(
    private readonly limits: ReceiveChannelLimits,
    private readonly sizeOf: (item: T) => number,
    /** Called when the consumer took an item out of a full queue. */
    private readonly onSpace: () => void,
  ) {}

  /** True when the producer should stop until `onSpace`. */
  get full(): boolean {
    const count = this.items.length - this.head;
    return count >= this.limits.capacity || (count > 0 && this.queuedBytes >= this.limits.maxBytes);
  }

  get isClosedForReceive(): boolean {
    return this.closed && this.items.length === this.head;
  }

  /** Producer side: queues an item, or hands it straight to a waiting receiver. */
  offer(item: T): void {
    if (this.closed) return;
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter.resolve(item);
      return;
    }
    this.items.push(item);
    this.queuedBytes += this.sizeOf(item);
  }

  /** Producer side: no more items; a receiver waiting on an empty queue is rejected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(new ClosedReceiveChannelError());
  }

  /** The next item, or undefined when none is queued. */
  tryReceive(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const wasFull = this.full;
    const item = this.items[this.head];
    this.items[this.head++] = undefined as T;
    this.queuedBytes -= this.sizeOf(item);
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    }
    if (wasFull) this.onSpace();
    return item;
  }

  /** The next item; rejects with ClosedReceiveChannelError once the channel is closed and empty. */
  receive(): Promise<T> {
    const item = this.tryReceive();
    if (item !== undefined) return Promise.resolve(item);
    if (this.closed) return Promise.reject(new ClosedReceiveChannelError());
    if (this.waiter !== undefined) {
      return Promise.reject(new Error('incoming has one reader at a time: a receive() is already waiting'));
    }
    return new Promise<T>((resolve, reject) => {
      this.waiter = { resolve, reject };
      // The queue is empty, so a producer paused on a full queue can go on.
      this.onSpace();
    });
  }

  /** Iterates until the connection ends; ending is not an error. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.tryReceive();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.closed) return;
      try {
        yield await this.receive();
      } catch (error) {
        if (error instanceof ClosedReceiveChannelError) return;
        throw error;
      }
    }
  }
}
