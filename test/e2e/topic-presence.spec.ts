/**
 * Presence on the in-process broker: sessions subscribe to a topic whose
 * rule has `presence: true` with data, `WebSocketSessions.presence` and
 * `presenceCount` show them until they unsubscribe or their connection ends
 * (closed or reset), `onPresence` listeners hear joins and leaves (one that
 * throws is logged, the others still hear), and a topic without presence is
 * refused with what to do. Also the `broker` option: refused when it is no
 * broker, taken from a forRootAsync factory.
 */
import 'reflect-metadata';
import type { Socket } from 'node:net';
import { Controller } from '@nestjs/common';
import {
  InProcessBroker,
  WebSocketRoute,
  WebSocketSessions,
  WebSocketsModule,
  type DefaultWebSocketServerSession,
  type PresenceEntry,
  type PresenceEvent,
  type TopicOptions,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { eventually } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { initApp, PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { runTopicCommands, TopicPeer } from '../support/topic-peer.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();
/** Every app of this file logs here: Nest's Logger override is process-wide. */
const logger = new RecordingLogger();
const TOPICS: TopicOptions[] = [{ match: /^room:/, presence: true }];

@Controller()
class RoomController {
  constructor(private readonly sessions: WebSocketSessions) {}

  @WebSocketRoute('room')
  member(session: DefaultWebSocketServerSession) {
    return runTopicCommands(session, this.sessions);
  }
}

const byUser = (a: PresenceEntry, b: PresenceEntry) => String((a.data as { user: string }).user).localeCompare((b.data as { user: string }).user);

describe.each(PLATFORMS)('presence (%s)', (platform) => {
  let t: TestApp;
  let registry: WebSocketSessions;
  beforeAll(async () => {
    t = await startApp([RoomController], { topics: TOPICS }, [], { platform, logger: true, configure: (app) => app.useLogger(logger) });
    registry = t.app.get(WebSocketSessions);
  });
  afterAll(() => t.close());
  beforeEach(() => logger.reset());
  afterEach(async () => {
    clients.dropAll();
    await eventually(() => registry.size === 0, 'every session of the test to leave the registry');
  });

  const connect = async (user: string) => new TopicPeer(clients.track(await WsClient.connect(t.url(`/room?user=${user}`))));
  const idOf = (user: string): string => {
    const session: WebSocketServerSession | undefined = registry.find((s) => s.call.query.user === user);
    if (session === undefined) throw new Error(`no session of ${user}`);
    return session.id;
  };
  /** The users in the topic's presence, by name. */
  const usersIn = async (topic: string) => (await registry.presence(topic)).map((entry) => (entry.data as { user: string }).user).sort();
  /** Connected and subscribed to `topic` with `{ data: { user } }`. */
  async function join(user: string, topic: string): Promise<TopicPeer> {
    const peer = await connect(user);
    expect(await peer.ask({ sub: topic, data: { user } })).toEqual({ recovered: false });
    return peer;
  }

  it('lists who subscribed with their process, session id and data, and counts them, per topic', async () => {
    await join('alice', 'room:1');
    await join('bob', 'room:1');
    await join('carol', 'room:2');
    const entries = (await registry.presence('room:1')).sort(byUser);
    expect(entries).toEqual([
      { process: entries[0].process, session: idOf('alice'), data: { user: 'alice' } },
      { process: entries[0].process, session: idOf('bob'), data: { user: 'bob' } },
    ]);
    expect(typeof entries[0].process).toBe('string');
    expect(await registry.presence('room:2')).toEqual([{ process: entries[0].process, session: idOf('carol'), data: { user: 'carol' } }]);
    expect(await registry.presenceCount('room:1')).toBe(2);
    expect(await registry.presenceCount('room:2')).toBe(1);
    expect(await registry.presence('room:nobody')).toEqual([]);
    expect(await registry.presenceCount('room:nobody')).toBe(0);
  });

  it('drops an entry when its session unsubscribes, closes, or its connection is reset', async () => {
    const alice = await join('alice', 'room:3');
    const bob = await join('bob', 'room:3');
    const carol = await join('carol', 'room:3');
    await join('dave', 'room:3');
    expect(await usersIn('room:3')).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(await alice.ask({ unsub: 'room:3' })).toBeNull();
    expect(await usersIn('room:3')).toEqual(['bob', 'carol', 'dave']);
    await bob.close();
    await eventually(() => registry.size === 3, 'bob to leave');
    expect(await usersIn('room:3')).toEqual(['carol', 'dave']);
    (carol.client.ws as unknown as { _socket: Socket })._socket.resetAndDestroy();
    await eventually(() => registry.size === 2, 'carol to leave');
    expect(await usersIn('room:3')).toEqual(['dave']);
    expect(await registry.presenceCount('room:3')).toBe(1);
  });

  it('has no entry for a session that unsubscribed before its subscription settled', async () => {
    const peer = await connect('erin');
    expect(await peer.ask({ subThenUnsub: 'room:5', data: { user: 'erin' } })).toMatchObject({ recovered: false });
    await join('frank', 'room:5');
    expect(await usersIn('room:5')).toEqual(['frank']);
  });

  it('tells onPresence listeners of joins and leaves; one that throws is logged and the others still hear', async () => {
    const heard: PresenceEvent[] = [];
    const stops = [
      registry.onPresence(() => {
        throw new Error('listener broke');
      }),
      registry.onPresence((event) => heard.push(event)),
    ];
    try {
      const alice = await join('alice', 'room:4');
      const aliceId = idOf('alice');
      await join('bob', 'room:4');
      const bobId = idOf('bob');
      expect(await alice.ask({ unsub: 'room:4' })).toBeNull();
      clients.dropAll();
      await eventually(() => heard.length === 4, 'bob to leave');
      const process = heard[0].entry.process;
      expect(heard).toEqual([
        { type: 'join', topic: 'room:4', entry: { process, session: aliceId, data: { user: 'alice' } } },
        { type: 'join', topic: 'room:4', entry: { process, session: bobId, data: { user: 'bob' } } },
        { type: 'leave', topic: 'room:4', entry: { process, session: aliceId, data: { user: 'alice' } } },
        { type: 'leave', topic: 'room:4', entry: { process, session: bobId, data: { user: 'bob' } } },
      ]);
      expect(logger.errors).toEqual(['join', 'join', 'leave', 'leave'].map((type) => `An onPresence listener threw for ${type} in "room:4": listener broke`));
    } finally {
      for (const stop of stops) stop();
    }
    // Stopped: nobody hears the next ones.
    await join('carol', 'room:4');
    expect(heard).toHaveLength(4);
  });

  it('refuses presence for a topic whose rule has no presence: true, saying which option to add', async () => {
    await expect(registry.presence('news')).rejects.toThrow(
      new Error(
        'WebSocketSessions.presence("news"): presence is not tracked for this topic: add a rule with presence: true for it to the topics option of WebSocketsModule.forRoot()',
      ),
    );
    await expect(registry.presenceCount('news')).rejects.toThrow('WebSocketSessions.presenceCount("news"): presence is not tracked for this topic');
    await expect(registry.presence('')).rejects.toThrow('WebSocketSessions.presence(): a topic must be a non-empty string');
  });
});

describe('broker option', () => {
  it.each<[string, unknown, string]>([
    ['an empty object', {}, 'got {} (an object)'],
    ['a URL string', 'redis://127.0.0.1:6379', 'got "redis://127.0.0.1:6379" (a string)'],
    [
      'an object with some of the methods',
      { processId: 'p1', start() {}, stop() {} },
      'got {"processId":"p1"} (an object), which has no subscribe, unsubscribe, publish, readHistory, join, leave, presence',
    ],
  ])('refuses %s at startup, saying what a broker is', async (_, broker, got) => {
    await expect(initApp([RoomController], [WebSocketsModule.forRoot({ broker: broker as InProcessBroker })])).rejects.toThrow(
      new TypeError(`WebSocketsModule option broker must be a WebSocketBroker (new RedisBroker({ url }) from nest-websocket-routes/redis, say), ${got}`),
    );
  });

  it('takes the broker a forRootAsync factory returns', async () => {
    const broker = new InProcessBroker();
    const t = await startApp([RoomController], {}, [], {
      imports: [WebSocketsModule.forRootAsync({ useFactory: async () => ({ broker, topics: TOPICS }) })],
    });
    try {
      const registry = t.app.get(WebSocketSessions);
      const peer = new TopicPeer(clients.track(await WsClient.connect(t.url('/room?user=gus'))));
      expect(await peer.ask({ sub: 'room:6', data: { user: 'gus' } })).toEqual({ recovered: false });
      expect(await registry.presence('room:6')).toEqual([{ process: broker.processId, session: registry.list()[0].id, data: { user: 'gus' } }]);
      expect(await broker.presence('room:6')).toHaveLength(1);
      expect(await registry.publish('room:6', 'through the given broker')).toEqual({ position: undefined });
      expect(await peer.nextText()).toBe('through the given broker');
    } finally {
      clients.dropAll();
      await t.close();
    }
  });
});
