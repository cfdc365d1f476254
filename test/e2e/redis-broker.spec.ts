/**
 * The Redis broker between applications: three Nest apps in this process, each with its own RedisBroker on
 * one real redis-server (started here on a loopback port), as three instances of one application. What a
 * subscriber on any of them receives, in what order; history and recovery across instances; presence;
 * and a Redis that goes away and comes back. (Separate processes and kill -9: redis-cluster.spec.ts.)
 */
import { WebSocketSessions, type StreamPosition } from 'nest-websocket-routes';
import { RedisBroker } from 'nest-websocket-routes/redis';
import { createClient } from 'redis';
import { MEMBER_TOPICS, MemberController } from '../fixtures/member-route.js';
import { eventually } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { RedisServer } from '../support/redis-server.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();

describe('RedisBroker between three instances', () => {
  let redis: RedisServer;
  let apps: TestApp[];
  let registries: WebSocketSessions[];
  const logger = new RecordingLogger();

  beforeAll(async () => {
    redis = await RedisServer.start({ appendOnly: true });
    apps = [];
    for (let n = 0; n < 3; n++) {
      apps.push(
        await startApp([MemberController], { broker: new RedisBroker({ url: redis.url, presenceTtl: 1_000 }), topics: MEMBER_TOPICS }, [], {
          configure: (app) => app.useLogger(logger),
        }),
      );
    }
    registries = apps.map((t) => t.app.get(WebSocketSessions));
  });
  afterAll(async () => {
    clients.dropAll();
    for (const t of apps ?? []) await t.close();
    await redis?.remove();
  });
  afterEach(async () => {
    clients.dropAll();
    await eventually(() => registries.every((registry) => registry.size === 0), 'every session to leave');
  });

  /** Waits until every instance publishes again after a Redis restart. */
  /** Waits until every instance has both its connections back after a Redis restart: it publishes, and Redis lists them. */
  const everyInstanceConnected = () =>
    eventually(
      async () => {
        const published = await Promise.all(registries.map((registry) => registry.publish('probe', '').then(() => true, () => false)));
        // Two connections per instance (commands, subscriptions), and the one asking.
        const clients = (await redis.command('CLIENT', 'LIST')).split('\n').filter((line) => line.includes('addr=')).length;
        return published.every(Boolean) && clients >= 2 * registries.length + 1;
      },
      'every instance to reach Redis again',
      15_000,
    );

  /** A member's client, its subscribe result, and what it received before (recovered messages come before subscribe resolves). */
  const join = async (instance: number, query: string): Promise<[WsClient, Record<string, unknown>, string[]]> => {
    const client = clients.track(await WsClient.connect(apps[instance].url(`/member?${query}`)));
    const before: string[] = [];
    for (let text = await client.nextText(); ; text = await client.nextText()) {
      if (text.startsWith('subscribed ')) return [client, JSON.parse(text.slice('subscribed '.length)) as Record<string, unknown>, before];
      before.push(text);
    }
  };

  it('delivers each publish once to every subscriber on every instance, the publisher left out, in each publisher’s order', async () => {
    const members = [];
    for (let n = 0; n < 6; n++) members.push((await join(n % 3, 'topic=news'))[0]);
    const COUNT = 50;
    // Two publishers on two instances, interleaved.
    for (let k = 0; k < COUNT; k++) {
      members[0].ws.send(`a${k}`);
      members[4].ws.send(`b${k}`);
    }
    for (const [n, member] of members.entries()) {
      const expected = (n === 0 ? [] : ['a']).concat(n === 4 ? [] : ['b']);
      const received: string[] = [];
      for (let k = 0; k < expected.length * COUNT; k++) received.push(await member.nextText());
      for (const from of expected) {
        expect(received.filter((text) => text[0] === from)).toEqual(Array.from({ length: COUNT }, (_, k) => `${from}${k}`));
      }
    }
    // Nothing more: no instance delivered twice.
    await registries[2].publish('news', 'end');
    for (const member of members) expect(await member.nextText()).toBe('end');
  });

  it('carries binary, Frame and serialized values between instances', async () => {
    const [far] = await join(2, 'topic=mixed');
    await registries[0].publish('mixed', new Uint8Array([0, 255, 10, 124]));
    expect(await far.next()).toEqual({ data: Buffer.from([0, 255, 10, 124]), isBinary: true });
    await registries[1].publishSerialized('mixed', { a: [1, 'two'], b: null });
    expect(JSON.parse(await far.nextText())).toEqual({ a: [1, 'two'], b: null });
  });

  it('gives consecutive positions, and a client that reconnects to another instance gets what it missed, then live, once each', async () => {
    const [first, subscribed] = await join(0, 'topic=kept:a');
    const start = subscribed.position as StreamPosition;
    expect(subscribed.recovered).toBe(false);
    const positions: StreamPosition[] = [];
    for (let k = 1; k <= 3; k++) positions.push((await registries[1].publish('kept:a', `m${k}`)).position!);
    expect(positions).toEqual([1, 2, 3].map((k) => ({ offset: start.offset + k, epoch: start.epoch })));
    for (let k = 1; k <= 3; k++) expect(JSON.parse(await first.nextText())).toEqual({ text: `m${k}`, ...positions[k - 1] });
    first.ws.terminate();
    await eventually(() => registries[0].size === 0, 'the first connection to end');
    for (let k = 4; k <= 6; k++) await registries[2].publish('kept:a', `m${k}`);

    const last = positions[2];
    const [again, result, missed] = await join(1, `topic=kept:a&offset=${last.offset}&epoch=${last.epoch}`);
    expect(result).toEqual({ recovered: true, position: { offset: start.offset + 6, epoch: start.epoch } });
    expect(missed.map((text) => JSON.parse(text) as unknown)).toEqual(
      [4, 5, 6].map((k) => ({ text: `m${k}`, offset: start.offset + k, epoch: start.epoch })),
    );
    await registries[0].publish('kept:a', 'm7');
    expect(JSON.parse(await again.nextText())).toEqual({ text: 'm7', offset: start.offset + 7, epoch: start.epoch });
  });

  it('says when it cannot recover: another epoch, or a position past the history', async () => {
    await registries[0].publish('kept:b', 'one');
    const [, otherEpoch] = await join(1, 'topic=kept:b&offset=0&epoch=not-this-one');
    expect(otherEpoch.recovered).toBe(false);
    const [, ahead] = await join(2, 'topic=kept:b&offset=999&epoch=' + (otherEpoch.position as StreamPosition).epoch);
    expect(ahead.recovered).toBe(false);
  });

  it('shows presence across instances, with join and leave events on each', async () => {
    const events: string[][] = [[], [], []];
    const stops = registries.map((registry, n) => registry.onPresence((event) => events[n].push(`${event.type} ${String((event.entry.data as { user: string }).user)}`)));
    try {
      const [ann] = await join(0, 'topic=room:1&user=ann');
      const [bob] = await join(1, 'topic=room:1&user=bob');
      await join(2, 'topic=room:1&user=cid');
      const users = async (n: number) => (await registries[n].presence('room:1')).map((entry) => (entry.data as { user: string }).user).sort();
      expect(await users(2)).toEqual(['ann', 'bob', 'cid']);
      expect(await registries[0].presenceCount('room:1')).toBe(3);
      bob.ws.close();
      await eventually(async () => (await users(0)).join() === 'ann,cid', 'bob to leave presence');
      await eventually(() => events[0].includes('leave bob'), 'instance 0 to hear bob leave');
      ann.ws.terminate();
      await eventually(async () => (await users(1)).join() === 'cid', 'ann to leave presence');
      // Instance 2 subscribed last: it saw its own join, and both leaves.
      await eventually(() => events[2].includes('leave ann') && events[2].includes('leave bob'), 'instance 2 to hear the leaves');
      expect(events[2].filter((event) => event.startsWith('join'))).toContain('join cid');
      expect(events[0].slice(0, 3)).toEqual(['join ann', 'join bob', 'join cid']);
    } finally {
      stops.forEach((stop) => stop());
    }
  });

  it('survives a Redis restart: one log line each way, publishes reject meanwhile, then flow again and history tops up', async () => {
    const [member] = await join(1, 'topic=kept:c');
    await registries[0].publish('kept:c', 'before');
    expect(JSON.parse(await member.nextText())).toMatchObject({ text: 'before' });
    logger.reset();
    await redis.kill();
    await eventually(() => logger.errors.length >= 3, 'each instance to log the outage');
    const refusal = await registries[0].publish('kept:c', 'during').catch((error: Error) => error);
    expect(refusal).toBeInstanceOf(Error);
    expect((refusal as Error).name).toBe('WebSocketBrokerError');
    expect((refusal as Error).message).toContain('was not published (it reached nobody)');
    await redis.restart();
    await everyInstanceConnected();
    await registries[0].publish('kept:c', 'after');
    expect(JSON.parse(await member.nextText())).toMatchObject({ text: 'after' });
    // One line per instance for the outage, however many reconnect attempts failed.
    expect(logger.errors.filter((line) => line.includes('is unreachable'))).toHaveLength(3);
  }, 30_000);

  it('sends a leave that Redis missed once it is back, and does not resubscribe a topic left meanwhile', async () => {
    const [ann] = await join(0, 'topic=room:2&user=ann');
    // Keeps instance 0 heartbeating in room:2, so ann's entry cannot just expire: only the leave removes it.
    await join(0, 'topic=room:2&user=amy');
    await join(1, 'topic=room:2&user=bob');
    const [gone] = await join(2, 'topic=gone');
    await redis.kill();
    ann.ws.close();
    gone.ws.close();
    await eventually(() => registries[0].size === 1 && registries[2].size === 0, 'both sessions to end while Redis is away');
    await redis.restart();
    await everyInstanceConnected();
    // The append-only file kept ann's entry, and instance 0 still heartbeats for amy: only the retried leave removes it.
    const users = async () => (await registries[1].presence('room:2')).map((entry) => (entry.data as { user: string }).user).sort().join();
    await eventually(async () => (await users()) === 'amy,bob', 'ann to leave presence');
    // Beyond presenceTtl, so an entry left behind would still be there, heartbeated.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await users()).toBe('amy,bob');
    await eventually(async () => (await redis.command('PUBSUB', 'SHARDNUMSUB', 'nwr:{gone}')).endsWith(':0\r\n'), 'nobody to subscribe to "gone"', 15_000);
  }, 30_000);

  it('follows a Redis that lost its data into the new epoch: logged once, and what it has is read back from its start', async () => {
    const [member] = await join(1, 'topic=kept:lost');
    await registries[0].publish('kept:lost', 'old');
    const old = JSON.parse(await member.nextText()) as { epoch: string };
    logger.reset();
    // The data goes, and with it the subscriptions' connections: what is published at once may not be heard live.
    await redis.command('FLUSHALL');
    await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub');
    const fresh: StreamPosition[] = [];
    for (const text of ['n1', 'n2', 'n3']) fresh.push((await registries[0].publish('kept:lost', text)).position!);
    expect(fresh.map((position) => position.offset)).toEqual([1, 2, 3]);
    expect(fresh[0].epoch).not.toBe(old.epoch);
    const received = [];
    for (let n = 0; n < 3; n++) received.push(JSON.parse(await member.nextText()) as unknown);
    expect(received).toEqual(['n1', 'n2', 'n3'].map((text, n) => ({ text, ...fresh[n] })));
    expect(logger.warns.filter((line) => line.includes('began a new epoch'))).toHaveLength(1);
  });

  it('subscribes in Redis only where a topic has subscribers, and leaves with the last one', async () => {
    const subscribers = async (topic: string) => Number(/:(\d+)\r\n$/.exec(await redis.command('PUBSUB', 'SHARDNUMSUB', `nwr:{${topic}}`))?.[1]);
    expect(await subscribers('interest')).toBe(0);
    const [first] = await join(0, 'topic=interest');
    const [second] = await join(0, 'topic=interest');
    // One Redis subscription for the process, however many of its sessions subscribe; none for the other two.
    expect(await subscribers('interest')).toBe(1);
    const [third] = await join(2, 'topic=interest');
    expect(await subscribers('interest')).toBe(2);
    first.ws.close();
    third.ws.close();
    await eventually(async () => (await subscribers('interest')) === 1, 'instance 2 to leave with its last subscriber');
    second.ws.close();
    await eventually(async () => (await subscribers('interest')) === 0, 'instance 0 to leave with its last subscriber');
  });

  it('rejects a publish past 10 000 waiting for Redis, at once and quietly; the others go through', async () => {
    const sleeping = redis.command('DEBUG', 'SLEEP', '1');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const publishes = Array.from({ length: 10_001 }, (_, n) => registries[0].publish('flood', `m${n}`));
    const refused = await publishes[10_000].then(() => undefined, (error: Error) => error.message);
    expect(refused).toContain('10000 publishes are waiting for Redis at redis://127.0.0.1:');
    expect(refused).toContain('await publishes, or publish less at once');
    await sleeping;
    const outcomes = await Promise.allSettled(publishes.slice(0, 10_000));
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toHaveLength(0);
  }, 30_000);
});

describe('new RedisBroker(options)', () => {
  it.each([
    [undefined, 'new RedisBroker(options): options must be an object with url or client, got undefined'],
    [{}, 'new RedisBroker(options): give url (redis://host:6379) or client (a node-redis client), exactly one; got'],
    [{ url: 'localhost:6379' }, 'new RedisBroker(options): url must be a redis:// or rediss:// URL, got "localhost:6379" (a string)'],
    [{ url: 'redis://h', prefix: 'a{b}' }, 'new RedisBroker(options): prefix must be a non-empty string without { or }, got "a{b}" (a string)'],
    [{ url: 'redis://h', presenceTtl: 0 }, 'new RedisBroker(options): presenceTtl must be a whole number of milliseconds from 1, got 0 (a number)'],
  ])('refuses %j, saying what it takes', (options, message) => {
    expect(() => new RedisBroker(options as never)).toThrow(message);
  });
});

describe('RedisBroker on a client the application has', () => {
  it('publishes through it, subscribes on a duplicate, and leaves it open at shutdown', async () => {
    const redis = await RedisServer.start();
    const client = createClient({ url: redis.url });
    client.on('error', () => undefined);
    try {
      const t = await startApp([MemberController], { broker: new RedisBroker({ client }) });
      const member = await WsClient.connect(t.url('/member?topic=own'));
      expect(await member.nextText()).toMatch(/^subscribed /);
      // The broker connected the client it was given (it was not).
      expect(client.isReady).toBe(true);
      await t.app.get(WebSocketSessions).publish('own', 'through the given client');
      expect(await member.nextText()).toBe('through the given client');
      member.ws.terminate();
      await t.close();
      expect(client.isReady).toBe(true);
      expect(await client.ping()).toBe('PONG');
    } finally {
      await client.close();
      await redis.remove();
    }
  });
});

describe('RedisBroker at application shutdown', () => {
  it('says goodbye: every session leaves presence and its topics, with nothing logged', async () => {
    const redis = await RedisServer.start();
    const logger = new RecordingLogger();
    // Presence would only expire after a minute: what the other instance sees comes from the leaves.
    const broker = () => new RedisBroker({ url: redis.url, presenceTtl: 60_000 });
    const leaving = await startApp([MemberController], { broker: broker(), topics: MEMBER_TOPICS }, [], { configure: (app) => app.useLogger(logger) });
    const staying = await startApp([MemberController], { broker: broker(), topics: MEMBER_TOPICS });
    try {
      for (const user of ['ann', 'bob', 'cid']) {
        const member = await WsClient.connect(leaving.url(`/member?topic=room:${user}&user=${user}`));
        expect(await member.nextText()).toMatch(/^subscribed /);
      }
      const registry = staying.app.get(WebSocketSessions);
      expect(await registry.presenceCount('room:ann')).toBe(1);
      await leaving.close();
      for (const user of ['ann', 'bob', 'cid']) expect(await registry.presence(`room:${user}`)).toEqual([]);
      expect(await redis.command('PUBSUB', 'SHARDCHANNELS')).toBe('*0\r\n');
      expect([...logger.warns, ...logger.errors]).toEqual([]);
    } finally {
      await staying.close();
      await redis.remove();
    }
  });
});
