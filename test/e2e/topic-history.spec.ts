/**
 * Topics with history on the in-process broker: each publish gets the next
 * position, an envelope puts it into what subscribers receive (built once
 * per message), a client that comes back with the last position it saw gets
 * what it missed then live messages with no gap and no duplicate (even while
 * messages are being published), and is told when that is no longer possible
 * (too old, another epoch, past the ttl). A lost live message is read back
 * from the history. Bad input and a throwing envelope or converter get a
 * clear answer while the rest carries on.
 */
import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import {
  InProcessBroker,
  JsonWebSocketConverter,
  WebSocketRoute,
  WebSocketSessions,
  type BrokerEvents,
  type BrokerMessage,
  type DefaultWebSocketServerSession,
  type StreamPosition,
  type SubscribeResult,
  type TopicMessage,
  type TopicOptions,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { eventually, sleep } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { runTopicCommands, TopicPeer } from '../support/topic-peer.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();
/** Every app of this file logs here: Nest's Logger override is process-wide. */
const logger = new RecordingLogger();
let envelopeCalls = 0;

/** `{ text | value | bytes, offset, epoch }` as JSON text; a text "boom" cannot be wrapped. */
function envelope(message: TopicMessage): string {
  envelopeCalls++;
  if (message.type === 'text' && message.text === 'boom') throw new Error('cannot wrap boom');
  const body = message.type === 'text' ? { text: message.text } : message.type === 'value' ? { value: message.value } : { bytes: [...message.bytes] };
  return JSON.stringify({ ...body, offset: message.position?.offset, epoch: message.position?.epoch });
}

const TOPICS: TopicOptions[] = [
  { match: /^feed:/, history: { size: 5, ttl: 60_000 }, envelope },
  { match: /^brief:/, history: { size: 100, ttl: 200 }, envelope },
  { match: /^stress:/, history: { size: 1_000, ttl: 60_000 }, envelope },
  { match: /^plain:/, history: { size: 100, ttl: 60_000 } },
];

/** JSON, but refuses values marked `picky`. */
class PickyConverter extends JsonWebSocketConverter {
  serialize(value: unknown) {
    if ((value as { picky?: boolean } | null)?.picky === true) throw new Error('picky refuses this');
    return super.serialize(value);
  }
}

@Controller()
class HistoryController {
  constructor(private readonly sessions: WebSocketSessions) {}

  @WebSocketRoute('history')
  member(session: DefaultWebSocketServerSession) {
    return runTopicCommands(session, this.sessions);
  }

  @WebSocketRoute('picky', { converter: new PickyConverter() })
  picky(session: DefaultWebSocketServerSession) {
    return runTopicCommands(session, this.sessions);
  }
}

/** The in-process broker, but live messages whose text starts with "lost" never reach the topics (the history has them). */
class LossyBroker extends InProcessBroker {
  start(events: BrokerEvents): Promise<void> {
    return super.start(relaying(events, (message) => textOf(message).startsWith('lost') || events.message(message)));
  }
}

/** The in-process broker, but live messages reach the topics a turn of the event loop later, as over a network: the history is ahead of them. */
class LaggingBroker extends InProcessBroker {
  start(events: BrokerEvents): Promise<void> {
    return super.start(relaying(events, (message) => setImmediate(() => events.message(message))));
  }
}

function relaying(events: BrokerEvents, message: (message: BrokerMessage) => void): BrokerEvents {
  return { message, presence: (event) => events.presence(event), resumed: () => events.resumed() };
}

function textOf(message: BrokerMessage): string {
  return message.payload.type === 'text' ? Buffer.from(message.payload.bytes).toString('utf8') : '';
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, n) => from + n);

/**
 * 20 sessions subscribe with a position (where the topic is, a while back, its start) while 500 messages are
 * published: each must receive exactly the offsets after its position, in order.
 */
async function recoverWhilePublishing(t: TestApp): Promise<void> {
  const TOTAL = 500;
  const registry = t.app.get(WebSocketSessions);
  const peers = await Promise.all(range(0, 19).map(async (n) => new TopicPeer(clients.track(await WsClient.connect(t.url(`/history?user=p${n}`))))));
  const sessionOf = (n: number) => registry.find((session) => session.call.query.user === `p${n}`)!;
  const joins: Array<Promise<{ since: number; result: unknown }>> = [];
  for (let offset = 1; offset <= TOTAL; offset++) {
    const { position } = await registry.publish('stress:a', `m${offset}`);
    expect(position?.offset).toBe(offset);
    if (offset % 20 === 0 && joins.length < peers.length) {
      const n = joins.length;
      const since = { offset: [offset, offset - 7 * n, 0][n % 3], epoch: position!.epoch };
      // Half from the route as its peer asks (between publishes), half from here: not awaited, so under way while the publishes go on.
      const subscribed = n % 2 === 0 ? peers[n].ask({ sub: 'stress:a', since }) : sessionOf(n).subscribe('stress:a', { since });
      joins.push(subscribed.then((result) => ({ since: since.offset, result })));
    }
    // Lets the peers' commands in, now and then.
    if (offset % 25 === 0) await new Promise(setImmediate);
  }
  const joined = await Promise.all(joins);
  for (const [n, { since, result }] of joined.entries()) {
    expect(result).toMatchObject({ recovered: true });
    const offsets: unknown[] = [];
    while (offsets.length === 0 || offsets.at(-1) !== TOTAL) offsets.push((await peers[n].nextJson()).offset);
    expect(offsets).toEqual(range(since + 1, TOTAL));
  }
  await registry.broadcast(() => true, 'end');
  for (const peer of peers) expect(await peer.nextText()).toBe('end');
}

describe.each(PLATFORMS)('topics with history (%s)', (platform) => {
  let t: TestApp;
  let registry: WebSocketSessions;
  beforeAll(async () => {
    t = await startApp([HistoryController], { topics: TOPICS }, [], { platform, logger: true, configure: (app) => app.useLogger(logger) });
    registry = t.app.get(WebSocketSessions);
  });
  afterAll(() => t.close());
  beforeEach(() => logger.reset());
  afterEach(async () => {
    clients.dropAll();
    await eventually(() => registry.size === 0, 'every session of the test to leave the registry');
  });

  const connect = async (path = '/history') => new TopicPeer(clients.track(await WsClient.connect(t.url(path))));
  const subscribe = async (peer: TopicPeer, topic: string, since?: StreamPosition) =>
    (await peer.ask(since === undefined ? { sub: topic } : { sub: topic, since })) as SubscribeResult;
  const sessionOf = (user: string): WebSocketServerSession => {
    const session = registry.find((s) => s.call.query.user === user);
    if (session === undefined) throw new Error(`no session of ${user}`);
    return session;
  };
  /** Publishes `texts` one after the other, each resolving with the next offset in `epoch`. */
  async function publishAll(topic: string, epoch: string | undefined, texts: string[], firstOffset: number): Promise<string> {
    let seen = epoch;
    for (const [n, text] of texts.entries()) {
      const { position } = await registry.publish(topic, text);
      seen ??= position?.epoch;
      expect(position).toEqual({ offset: firstOffset + n, epoch: seen });
    }
    return seen!;
  }
  /** A marker to every session: a peer that got nothing else before it got nothing it should not have. */
  async function endMarker(...expecting: TopicPeer[]) {
    await registry.broadcast(() => true, 'end');
    for (const peer of expecting) expect(await peer.nextText()).toBe('end');
  }

  it('gives each publish the next offset in one epoch, and subscribers the envelope with it, built once per message', async () => {
    const peers = await Promise.all([0, 1, 2].map(() => connect()));
    const joined = await Promise.all(peers.map((peer) => subscribe(peer, 'feed:e')));
    const epoch = joined[0].position!.epoch;
    expect(typeof epoch).toBe('string');
    for (const result of joined) expect(result).toEqual({ position: { offset: 0, epoch }, recovered: false });
    envelopeCalls = 0;
    await publishAll('feed:e', epoch, ['one', 'two'], 1);
    expect(await registry.publishSerialized('feed:e', { n: 3 })).toEqual({ position: { offset: 3, epoch } });
    expect(await registry.publish('feed:e', new Uint8Array([4, 2]))).toEqual({ position: { offset: 4, epoch } });
    for (const peer of peers) {
      expect(await peer.nextJson()).toEqual({ text: 'one', offset: 1, epoch });
      expect(await peer.nextJson()).toEqual({ text: 'two', offset: 2, epoch });
      expect(await peer.nextJson()).toEqual({ value: { n: 3 }, offset: 3, epoch });
      expect(await peer.nextJson()).toEqual({ bytes: [4, 2], offset: 4, epoch });
    }
    expect(envelopeCalls).toBe(4);
    await endMarker(...peers);
  });

  it('recovers what a client missed while away: the missed messages, then live ones, no gap, no duplicate', async () => {
    const first = await connect();
    const joined = await subscribe(first, 'feed:a');
    const epoch = joined.position!.epoch;
    expect(joined).toEqual({ position: { offset: 0, epoch }, recovered: false });
    await publishAll('feed:a', epoch, ['m1', 'm2', 'm3'], 1);
    for (const n of [1, 2, 3]) expect(await first.nextJson()).toEqual({ text: `m${n}`, offset: n, epoch });
    await first.close();
    await eventually(() => registry.size === 0, 'the first connection to end');

    await publishAll('feed:a', epoch, ['m4', 'm5', 'm6'], 4);
    const again = await connect();
    expect(await subscribe(again, 'feed:a', { offset: 3, epoch })).toEqual({ position: { offset: 6, epoch }, recovered: true });
    await publishAll('feed:a', epoch, ['m7'], 7);
    for (const n of [4, 5, 6, 7]) expect(await again.nextJson()).toEqual({ text: `m${n}`, offset: n, epoch });
    await endMarker(again);
  });

  it('says recovered: false, and sends none of the old messages, for a position older than the history keeps (size 5)', async () => {
    const epoch = await publishAll('feed:b', undefined, range(1, 8).map((n) => `m${n}`), 1);
    const late = await connect();
    expect(await subscribe(late, 'feed:b', { offset: 2, epoch })).toEqual({ position: { offset: 8, epoch }, recovered: false });
    // The oldest position the 5 kept messages (4..8) can still recover from.
    const justInTime = await connect();
    expect(await subscribe(justInTime, 'feed:b', { offset: 3, epoch })).toEqual({ position: { offset: 8, epoch }, recovered: true });
    await publishAll('feed:b', epoch, ['m9'], 9);
    expect(await late.nextJson()).toEqual({ text: 'm9', offset: 9, epoch });
    for (const n of range(4, 9)) expect(await justInTime.nextJson()).toEqual({ text: `m${n}`, offset: n, epoch });
    await endMarker(late, justInTime);
  });

  it('says recovered: false for a position of another epoch, and for none at all, with the newest position', async () => {
    const epoch = await publishAll('feed:c', undefined, ['m1', 'm2'], 1);
    const stranger = await connect();
    expect(await subscribe(stranger, 'feed:c', { offset: 1, epoch: `not-${epoch}` })).toEqual({ position: { offset: 2, epoch }, recovered: false });
    const fresh = await connect();
    expect(await subscribe(fresh, 'feed:c')).toEqual({ position: { offset: 2, epoch }, recovered: false });
    await publishAll('feed:c', epoch, ['m3'], 3);
    for (const peer of [stranger, fresh]) expect(await peer.nextJson()).toEqual({ text: 'm3', offset: 3, epoch });
    await endMarker(stranger, fresh);
  });

  it('says recovered: false once the missed messages are past the ttl (200 ms)', async () => {
    const epoch = await publishAll('brief:a', undefined, ['m1', 'm2', 'm3'], 1);
    await sleep(400);
    const late = await connect();
    expect(await subscribe(late, 'brief:a', { offset: 1, epoch })).toEqual({ position: { offset: 3, epoch }, recovered: false });
    await publishAll('brief:a', epoch, ['m4'], 4);
    expect(await late.nextJson()).toEqual({ text: 'm4', offset: 4, epoch });
    await endMarker(late);
  });

  it('gives sessions that recover while 500 messages are published each message once, in order, from their position on', () =>
    recoverWhilePublishing(t));

  it('leaves out the excepted session on a history topic, live and when it recovers, for publish and publishSerialized', async () => {
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((user) => connect(`/history?user=${user}`)));
    const epoch = (await subscribe(alice, 'plain:x')).position!.epoch;
    await subscribe(bob, 'plain:x');
    expect(await alice.ask({ say: 'plain:x', text: 'hi' })).toEqual({ position: { offset: 1, epoch } });
    expect(await registry.publishSerialized('plain:x', { n: 2 }, { except: sessionOf('bob') })).toEqual({ position: { offset: 2, epoch } });
    expect(await bob.ask({ sayValue: 'plain:x', value: { n: 3 } })).toEqual({ position: { offset: 3, epoch } });
    expect(await bob.nextText()).toBe('hi');
    expect(await alice.nextText()).toBe('{"n":2}');
    expect(await alice.nextText()).toBe('{"n":3}');
    // Coming back from the start: what was not for bob still is not; carol was excepted from nothing.
    expect(await bob.ask({ unsub: 'plain:x' })).toBeNull();
    expect(await subscribe(bob, 'plain:x', { offset: 0, epoch })).toEqual({ position: { offset: 3, epoch }, recovered: true });
    expect(await subscribe(carol, 'plain:x', { offset: 0, epoch })).toEqual({ position: { offset: 3, epoch }, recovered: true });
    expect(await bob.nextText()).toBe('hi');
    expect(await carol.nextText()).toBe('hi');
    expect(await carol.nextText()).toBe('{"n":2}');
    expect(await carol.nextText()).toBe('{"n":3}');
    await endMarker(alice, bob, carol);
  });

  it('refuses a since that is no position, and data without presence, with what is wrong; the session carries on', async () => {
    const peer = await connect();
    const refusal = (got: string) =>
      `TypeError: session.subscribe("feed:z"): since must be a position { offset, epoch } as a message's position gave it, got ${got}`;
    expect(await peer.ask({ sub: 'feed:z', since: 'x' })).toEqual({ error: refusal('"x" (a string)') });
    expect(await peer.ask({ sub: 'feed:z', since: { offset: -1, epoch: 'e' } })).toEqual({ error: refusal('{"offset":-1,"epoch":"e"} (an object)') });
    expect(await peer.ask({ sub: 'feed:z', since: { offset: 1.5, epoch: 'e' } })).toEqual({ error: refusal('{"offset":1.5,"epoch":"e"} (an object)') });
    expect(await peer.ask({ sub: 'feed:z', since: { offset: 1 } })).toEqual({ error: refusal('{"offset":1} (an object)') });
    expect(await peer.ask({ sub: 'feed:z', data: { user: 'ann' } })).toEqual({
      error:
        'TypeError: session.subscribe("feed:z"): data is what presence shows, and this topic has none: ' +
        'add a rule with presence: true for it to the topics option',
    });
    expect(registry.list()[0].isSubscribed('feed:z')).toBe(false);
    // A topic without history takes since and says it recovered nothing.
    expect(await peer.ask({ sub: 'news', since: { offset: 1, epoch: 'e' } })).toEqual({ recovered: false });
    const epoch = (await subscribe(peer, 'feed:z')).position!.epoch;
    await publishAll('feed:z', epoch, ['works'], 1);
    expect(await peer.nextJson()).toEqual({ text: 'works', offset: 1, epoch });
    await endMarker(peer);
  });

  it('logs an envelope that throws once; that message reaches nobody, the next one everybody', async () => {
    const peers = await Promise.all([0, 1].map(() => connect()));
    const epoch = (await Promise.all(peers.map((peer) => subscribe(peer, 'feed:f'))))[0].position!.epoch;
    await publishAll('feed:f', epoch, ['before', 'boom', 'after'], 1);
    for (const peer of peers) {
      expect(await peer.nextJson()).toEqual({ text: 'before', offset: 1, epoch });
      expect(await peer.nextJson()).toEqual({ text: 'after', offset: 3, epoch });
    }
    expect(logger.warns).toEqual(['The envelope of topic "feed:f" threw: cannot wrap boom; its subscribers here did not receive that message']);
    expect(logger.errors).toEqual([]);
    expect(registry.size).toBe(2);
    await endMarker(...peers);
  });

  it('logs a converter that throws for a published value; subscribers of other converters get it, and the next value all', async () => {
    const [picky, plain] = await Promise.all([connect('/picky'), connect()]);
    for (const peer of [picky, plain]) expect(await peer.ask({ sub: 'values' })).toEqual({ recovered: false });
    expect(await registry.publishSerialized('values', { picky: true })).toEqual({});
    expect(await registry.publishSerialized('values', { n: 2 })).toEqual({});
    expect(await plain.nextJson()).toEqual({ picky: true });
    for (const peer of [plain, picky]) expect(await peer.nextJson()).toEqual({ n: 2 });
    expect(logger.warns).toEqual([
      'A value published to "values" could not be serialized by PickyConverter: picky refuses this; its subscribers on /picky did not receive it',
    ]);
    await endMarker(picky, plain);
  });
});

describe('a live message the broker lost, on a history topic', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp([HistoryController], { topics: TOPICS, broker: new LossyBroker() }, [], { logger: true, configure: (app) => app.useLogger(logger) });
  });
  afterAll(() => t.close());
  beforeEach(() => logger.reset());
  afterEach(() => clients.dropAll());

  it('is read back from the history before the message that showed the gap; what the history lost is logged once', async () => {
    const registry = t.app.get(WebSocketSessions);
    const peer = new TopicPeer(clients.track(await WsClient.connect(t.url('/history'))));
    const { epoch } = ((await peer.ask({ sub: 'feed:g' })) as SubscribeResult).position!;
    for (const text of ['m1', 'lost2', 'lost3', 'm4']) await registry.publish('feed:g', text);
    for (const [n, text] of ['m1', 'lost2', 'lost3', 'm4'].entries()) expect(await peer.nextJson()).toEqual({ text, offset: n + 1, epoch });
    expect(logger.warns).toEqual([]);
    // 5..11 lost live, and the history (size 5) keeps 8..12 when 12 shows the gap: 5..7 are gone.
    for (const n of range(5, 11)) await registry.publish('feed:g', `lost${n}`);
    await registry.publish('feed:g', 'm12');
    for (const n of range(8, 12)) expect(await peer.nextJson()).toEqual({ text: n === 12 ? 'm12' : `lost${n}`, offset: n, epoch });
    expect(logger.warns).toEqual([
      'Topic "feed:g": messages after offset 4 were no longer in its history (size or ttl too small for the outage, or a new epoch); subscribers here missed them',
    ]);
    await registry.broadcast(() => true, 'end');
    expect(await peer.nextText()).toBe('end');
  });
});

describe('topics with history on a broker whose live messages lag behind its history', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startApp([HistoryController], { topics: TOPICS, broker: new LaggingBroker() })));
  afterAll(() => t.close());
  afterEach(() => clients.dropAll());

  it('gives sessions that recover while 500 messages are published each message once, in order, from their position on', () =>
    recoverWhilePublishing(t));
});
