/**
 * The in-process broker's history of one topic on its own: offsets from 1
 * in one epoch, a ring of the newest `size` messages, `ttl` against a given
 * clock, and what a read after a position finds and whether it is complete.
 */
import type { BrokerMessage } from '../../lib/broker/websocket-broker.js';
import { MemoryHistory } from '../../lib/broker/memory-history.js';

const messageOf = (text: string): BrokerMessage => ({ topic: 'news', payload: { type: 'text', bytes: Buffer.from(text) } });
const textsOf = (messages: readonly BrokerMessage[]) =>
  messages.map((message) => (message.payload.type === 'text' ? Buffer.from(message.payload.bytes).toString() : '?'));
const offsetsOf = (messages: readonly BrokerMessage[]) => messages.map((message) => message.position?.offset);

describe('MemoryHistory', () => {
  const roomy = { size: 100, ttl: 60_000 };

  it('gives consecutive offsets from 1 in one epoch, and each history its own epoch', () => {
    const history = new MemoryHistory();
    const appended = ['a', 'b', 'c'].map((text) => history.append(messageOf(text), roomy, 0));
    expect(appended.map((message) => message.position)).toEqual([1, 2, 3].map((offset) => ({ offset, epoch: history.epoch })));
    expect(textsOf(appended)).toEqual(['a', 'b', 'c']);
    expect(history.top).toEqual({ offset: 3, epoch: history.epoch });
    expect(typeof history.epoch).toBe('string');
    expect(new MemoryHistory().epoch).not.toBe(history.epoch);
  });

  it('starts at offset 0 with nothing kept', () => {
    const history = new MemoryHistory();
    expect(history.top).toEqual({ offset: 0, epoch: history.epoch });
    expect(history.newestAt).toBeUndefined();
    expect(history.read({ offset: 0, epoch: history.epoch }, roomy, 0)).toEqual({ top: history.top, complete: true, messages: [] });
  });

  it('reads what came after a position, complete; nothing after the newest', () => {
    const history = new MemoryHistory();
    for (const text of ['a', 'b', 'c', 'd']) history.append(messageOf(text), roomy, 0);
    const read = history.read({ offset: 1, epoch: history.epoch }, roomy, 0);
    expect(read.complete).toBe(true);
    expect(read.top).toEqual({ offset: 4, epoch: history.epoch });
    expect(textsOf(read.messages)).toEqual(['b', 'c', 'd']);
    expect(offsetsOf(read.messages)).toEqual([2, 3, 4]);
    expect(history.read({ offset: 0, epoch: history.epoch }, roomy, 0).messages).toHaveLength(4);
    expect(history.read({ offset: 4, epoch: history.epoch }, roomy, 0)).toEqual({ top: read.top, complete: true, messages: [] });
  });

  it('without a position, gives the newest position and no message', () => {
    const history = new MemoryHistory();
    history.append(messageOf('a'), roomy, 0);
    expect(history.read(undefined, roomy, 0)).toEqual({ top: { offset: 1, epoch: history.epoch }, complete: false, messages: [] });
  });

  it('keeps the newest `size` in order as the ring wraps, and says a read from before them is incomplete', () => {
    const small = { size: 3, ttl: 60_000 };
    const history = new MemoryHistory();
    for (let n = 1; n <= 10; n++) {
      history.append(messageOf(`m${n}`), small, 0);
      // After each append, the whole kept range reads back in order.
      const kept = Math.min(n, 3);
      const read = history.read({ offset: n - kept, epoch: history.epoch }, small, 0);
      expect(read.complete).toBe(true);
      expect(offsetsOf(read.messages)).toEqual(Array.from({ length: kept }, (_, k) => n - kept + 1 + k));
    }
    expect(offsetsOf(history.read({ offset: 8, epoch: history.epoch }, small, 0).messages)).toEqual([9, 10]);
    const tooOld = history.read({ offset: 6, epoch: history.epoch }, small, 0);
    expect(tooOld.complete).toBe(false);
    expect(offsetsOf(tooOld.messages)).toEqual([8, 9, 10]);
  });

  it('refuses another epoch or a position past the newest: incomplete, nothing read', () => {
    const history = new MemoryHistory();
    for (const text of ['a', 'b']) history.append(messageOf(text), roomy, 0);
    const top = { offset: 2, epoch: history.epoch };
    expect(history.read({ offset: 1, epoch: 'another' }, roomy, 0)).toEqual({ top, complete: false, messages: [] });
    expect(history.read({ offset: 3, epoch: history.epoch }, roomy, 0)).toEqual({ top, complete: false, messages: [] });
  });

  it('leaves out messages older than ttl at the time of the read, so a read that needed them is incomplete', () => {
    const brief = { size: 100, ttl: 100 };
    const history = new MemoryHistory();
    history.append(messageOf('old'), brief, 1_000);
    history.append(messageOf('newer'), brief, 1_050);
    expect(history.newestAt).toBe(1_050);
    expect(textsOf(history.read({ offset: 0, epoch: history.epoch }, brief, 1_100).messages)).toEqual(['old', 'newer']);
    const late = history.read({ offset: 0, epoch: history.epoch }, brief, 1_101);
    expect(late.complete).toBe(false);
    expect(textsOf(late.messages)).toEqual(['newer']);
    expect(history.read({ offset: 1, epoch: history.epoch }, brief, 1_101)).toMatchObject({ complete: true, messages: [{ position: { offset: 2 } }] });
    expect(history.read({ offset: 1, epoch: history.epoch }, brief, 1_151)).toMatchObject({ complete: false, messages: [] });
  });
});
