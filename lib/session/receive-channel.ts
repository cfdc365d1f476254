/**
 * A bounded, single-consumer queue that a session's `incoming` is made of.
 * Bounded by item count and by bytes: once full, the producer stops reading
 * the socket until the consumer takes something (backpressure).
 */
import { ClosedReceiveChannelError } from './channel-errors.js';

type Resolve = (value: unknown) => void;
type Reject = (error: Error) => void;

/**
 * The resolving functions of the promise being made (see `wait`): one shared executor stores them here,
 * read right after `new Promise` returns, instead of a closure and its context per wait.
 */
let madeResolve: Resolve | undefined;
let madeReject: Reject | undefined;
function keepResolvers(resolve: Resolve, reject: Reject): void {
  madeResolve = resolve;
  madeReject = reject;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

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
  /** A pending `receive()` (settles with the item) or iterator step (settles with an IteratorResult): its resolving functions. */
  private waitResolve: Resolve | undefined;
  private waitReject: Reject | undefined;
  private waitIterating = false;
  private closed = false;

  constructor(
    private readonly limits: ReceiveChannelLimits,
    private readonly sizeOf: (item: T) => number,
    /** Its `pump()` is called when the consumer took an item out of a full queue (an object, not a closure per channel). */
    private readonly producer: { pump(): void },
  ) {}

  /** True when the producer should stop until `producer.pump()`. */
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
    const resolve = this.waitResolve;
    if (resolve !== undefined) {
      this.waitResolve = this.waitReject = undefined;
      resolve(this.waitIterating ? { value: item, done: false } : item);
      return;
    }
    this.items.push(item);
    this.queuedBytes += this.sizeOf(item);
  }

  /** Producer side: no more items; a receiver waiting on an empty queue is rejected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const resolve = this.waitResolve;
    const reject = this.waitReject;
    this.waitResolve = this.waitReject = undefined;
    // A loop over `incoming` just ends: no error is built for it.
    if (this.waitIterating) resolve?.(DONE);
    else reject?.(new ClosedReceiveChannelError());
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
    if (wasFull) this.producer.pump();
    return item;
  }

  /** The next item; rejects with ClosedReceiveChannelError once the channel is closed and empty. */
  receive(): Promise<T> {
    const item = this.tryReceive();
    if (item !== undefined) return Promise.resolve(item);
    if (this.closed) return Promise.reject(new ClosedReceiveChannelError());
    return this.wait(false);
  }

  /**
   * Iterates until the connection ends; ending is not an error. Written out
   * rather than as an async generator: one promise per step, and no error built at the end.
   */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return new ChannelIterator(this);
  }

  /** @internal The next step of a loop over the channel. */
  nextStep(): Promise<IteratorResult<T>> {
    const item = this.tryReceive();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.closed) return Promise.resolve(DONE);
    return this.wait(true);
  }

  private wait<R>(iterating: boolean): Promise<R> {
    if (this.waitResolve !== undefined) {
      return Promise.reject(new Error('incoming has one reader at a time: a receive() is already waiting'));
    }
    const promise = new Promise<unknown>(keepResolvers) as Promise<R>;
    this.waitResolve = madeResolve;
    this.waitReject = madeReject;
    madeResolve = madeReject = undefined;
    this.waitIterating = iterating;
    // The queue is empty, so a producer paused on a full queue can go on.
    this.producer.pump();
    return promise;
  }
}

/** A class rather than an object of arrow functions: no closures kept per loop (each session runs one for its life). */
class ChannelIterator<T> implements AsyncIterator<T> {
  constructor(private readonly channel: BoundedReceiveChannel<T>) {}

  next(): Promise<IteratorResult<T>> {
    return this.channel.nextStep();
  }

  return(): Promise<IteratorResult<T>> {
    return Promise.resolve(DONE);
  }

  /** Iterable itself, as an async generator is. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    return this;
  }
}
