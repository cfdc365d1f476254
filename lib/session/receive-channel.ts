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

/**
 * Its own async iterator: a loop over `incoming` keeps no iterator object beside the channel (each session
 * runs one loop for its life). What an idle session holds here is this object and, while a receiver waits,
 * one pending promise and its resolve function.
 */
export class BoundedReceiveChannel<T> implements ReceiveChannel<T>, AsyncIterator<T> {
  /** Made with the first item queued: a receiver that keeps up never needs it. */
  private items: T[] | undefined;
  private head = 0;
  private queuedBytes = 0;
  /** A pending `receive()` (settles with the item) or loop step (settles with an IteratorResult): its resolve function. */
  private waitResolve: Resolve | undefined;
  /** Kept for a pending `receive()` only, which close() rejects; a loop step is resolved with DONE instead. */
  private waitReject: Reject | undefined;
  private closed = false;

  constructor(
    private readonly limits: ReceiveChannelLimits,
    private readonly sizeOf: (item: T) => number,
    /** Its `pump()` is called when the consumer took an item out of a full queue (an object, not a closure per channel). */
    private readonly producer: { pump(): void },
  ) {}

  /** True when the producer should stop until `producer.pump()`. */
  get full(): boolean {
    const count = this.queued;
    return count >= this.limits.capacity || (count > 0 && this.queuedBytes >= this.limits.maxBytes);
  }

  get isClosedForReceive(): boolean {
    return this.closed && this.queued === 0;
  }

  private get queued(): number {
    return this.items === undefined ? 0 : this.items.length - this.head;
  }

  /** Producer side: queues an item, or hands it straight to a waiting receiver. */
  offer(item: T): void {
    if (this.closed) return;
    const resolve = this.waitResolve;
    if (resolve !== undefined) {
      const iterating = this.waitReject === undefined;
      this.waitResolve = this.waitReject = undefined;
      resolve(iterating ? { value: item, done: false } : item);
      return;
    }
    (this.items ??= []).push(item);
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
    if (reject !== undefined) reject(new ClosedReceiveChannelError());
    else resolve?.(DONE);
  }

  /** The next item, or undefined when none is queued. */
  tryReceive(): T | undefined {
    const items = this.items;
    if (items === undefined || this.head === items.length) return undefined;
    const wasFull = this.full;
    const item = items[this.head];
    items[this.head++] = undefined as T;
    this.queuedBytes -= this.sizeOf(item);
    if (this.head === items.length) {
      items.length = 0;
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
    return this;
  }

  /** The next step of a loop over the channel. */
  next(): Promise<IteratorResult<T>> {
    const item = this.tryReceive();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.closed) return Promise.resolve(DONE);
    return this.wait(true);
  }

  /** A loop that stops early (`break`) leaves the channel as it is: another loop or receive() may go on. */
  return(): Promise<IteratorResult<T>> {
    return Promise.resolve(DONE);
  }

  private wait<R>(iterating: boolean): Promise<R> {
    if (this.waitResolve !== undefined) {
      return Promise.reject(new Error('incoming has one reader at a time: a receive() is already waiting'));
    }
    const promise = new Promise<unknown>(keepResolvers) as Promise<R>;
    this.waitResolve = madeResolve;
    if (!iterating) this.waitReject = madeReject;
    madeResolve = madeReject = undefined;
    // The queue is empty, so a producer paused on a full queue can go on.
    this.producer.pump();
    return promise;
  }
}
