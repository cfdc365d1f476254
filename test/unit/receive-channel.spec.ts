import { ClosedReceiveChannelError } from '../../lib/session/channel-errors.js';
import { BoundedReceiveChannel } from '../../lib/session/receive-channel.js';

/** A producer that counts how often the channel asked it to go on. */
function makeChannel(capacity = 3, maxBytes = 100) {
  const producer = { pumps: 0, pump: () => void producer.pumps++ };
  const channel = new BoundedReceiveChannel<string>({ capacity, maxBytes }, (item) => item.length, producer);
  return { channel, producer };
}

/** Whether a promise settled within the microtasks queued so far. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('BoundedReceiveChannel', () => {
  it('hands queued items out in order, and items offered later to a waiting receive()', async () => {
    const { channel } = makeChannel();
    channel.offer('a');
    channel.offer('b');
    await expect(channel.receive()).resolves.toBe('a');
    expect(channel.tryReceive()).toBe('b');
    expect(channel.tryReceive()).toBeUndefined();
    const waiting = channel.receive();
    expect(await settled(waiting)).toBe(false);
    channel.offer('c');
    await expect(waiting).resolves.toBe('c');
  });

  it('a loop over it gets every item, then ends without an error once closed', async () => {
    const { channel } = makeChannel();
    channel.offer('a');
    const seen: string[] = [];
    const loop = (async () => {
      for await (const item of channel) seen.push(item);
    })();
    await new Promise((resolve) => setImmediate(resolve));
    channel.offer('b');
    channel.offer('c');
    await new Promise((resolve) => setImmediate(resolve));
    channel.close();
    await loop;
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(channel.isClosedForReceive).toBe(true);
  });

  it('close() rejects a waiting receive() with ClosedReceiveChannelError, and every receive() after it', async () => {
    const { channel } = makeChannel();
    const waiting = channel.receive();
    channel.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedReceiveChannelError);
    await expect(channel.receive()).rejects.toBeInstanceOf(ClosedReceiveChannelError);
    channel.offer('late');
    expect(channel.tryReceive()).toBeUndefined();
  });

  it('items queued before close() are still handed out, then it reports closed', async () => {
    const { channel } = makeChannel();
    channel.offer('a');
    channel.close();
    expect(channel.isClosedForReceive).toBe(false);
    await expect(channel.receive()).resolves.toBe('a');
    expect(channel.isClosedForReceive).toBe(true);
    await expect(channel[Symbol.asyncIterator]().next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('one reader at a time: a second receive() while one waits is refused, the first still gets its item', async () => {
    const { channel } = makeChannel();
    const first = channel.receive();
    await expect(channel.receive()).rejects.toThrow('incoming has one reader at a time: a receive() is already waiting');
    channel.offer('x');
    await expect(first).resolves.toBe('x');
    // The slot is free again.
    const next = channel.receive();
    channel.offer('y');
    await expect(next).resolves.toBe('y');
  });

  it('is full at capacity items or at maxBytes, and asks the producer to go on once an item leaves a full queue', () => {
    const { channel, producer } = makeChannel(2, 10);
    channel.offer('aaaaaaaaaaaa'); // 12 bytes: one item is always accepted, and fills it by bytes
    expect(channel.full).toBe(true);
    expect(channel.tryReceive()).toBe('aaaaaaaaaaaa');
    expect(producer.pumps).toBe(1);
    expect(channel.full).toBe(false);
    channel.offer('b');
    channel.offer('c');
    expect(channel.full).toBe(true);
    channel.tryReceive();
    expect(producer.pumps).toBe(2);
    channel.tryReceive(); // not full before: no pump
    expect(producer.pumps).toBe(2);
  });

  it('a receive() on an empty queue asks the producer to go on', () => {
    const { channel, producer } = makeChannel();
    void channel.receive();
    expect(producer.pumps).toBe(1);
  });

  it('a loop that stops early leaves it open: a later loop, or receive(), gets the next items', async () => {
    const { channel } = makeChannel();
    channel.offer('a');
    channel.offer('b');
    for await (const item of channel) {
      expect(item).toBe('a');
      break;
    }
    const seen: string[] = [];
    const loop = (async () => {
      for await (const item of channel) seen.push(item);
    })();
    await new Promise((resolve) => setImmediate(resolve));
    channel.offer('c');
    channel.close();
    await loop;
    expect(seen).toEqual(['b', 'c']);
  });

  it('close() ends a waiting loop step with done; a step refused while a receive() waits leaves that receive() for close() to reject', async () => {
    const { channel } = makeChannel();
    const step = channel[Symbol.asyncIterator]().next();
    channel.close();
    await expect(step).resolves.toEqual({ value: undefined, done: true });
    const other = makeChannel().channel;
    const waiting = other.receive();
    await other[Symbol.asyncIterator]().next().catch(() => undefined);
    other.close();
    await expect(waiting).rejects.toBeInstanceOf(ClosedReceiveChannelError);
  });
});
