/**
 * A cluster for real: three processes of one application (test/fixtures/cluster-app.ts, built), each with its
 * RedisBroker on one real redis-server (append-only, started here on a loopback port), clients spread over
 * them. Delivery and order across processes, presence after a kill -9, recovery on another process after one
 * died, a Redis killed and restarted during traffic, and subscriber connections Redis itself dropped.
 */
import { join } from 'node:path';
import type { StreamPosition } from 'nest-websocket-routes';
import { eventually, sleep } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { RedisServer } from '../support/redis-server.js';
import { REPOSITORY, requireBuilt, ServerProcess } from '../support/server-process.js';
import { WsClient } from '../support/ws-client.js';

const FIXTURE = join(REPOSITORY, 'build/test/fixtures/cluster-app.js');
/** The fixture's presence expiry; its heartbeat comes every third of it. */
const PRESENCE_TTL = 1500;
/** A bound on waits for what should come within presenceTtl + one heartbeat: a generous multiple, never asserted. */
const PRESENCE_BOUND = 6 * (PRESENCE_TTL + PRESENCE_TTL / 3);

/** What a history topic's subscriber receives (the fixture's envelope). */
interface Kept {
  text: string;
  offset: number;
  epoch: string;
}

interface PublishReply {
  positions: StreamPosition[];
  /** Attempts refused while Redis was away (each retried until it resolved). */
  refused: number;
}

class Instance {
  killed = false;

  constructor(
    readonly server: ServerProcess,
    readonly port: number,
  ) {}

  static async start(): Promise<Instance> {
    const { server, port } = await ServerProcess.start(FIXTURE, []);
    return new Instance(server, port);
  }

  url(path: string): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  /** kill -9. */
  kill(): Promise<unknown> {
    this.killed = true;
    this.server.kill();
    return this.server.ended;
  }

  async http<T>(method: 'GET' | 'POST', path: string): Promise<T> {
    const response = await this.server.whileRunning(fetch(`http://127.0.0.1:${this.port}${path}`, { method }));
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${await response.text()}`);
    return (await response.json()) as T;
  }

  publish(topic: string, prefix: string, count: number, pauseMs?: number): Promise<PublishReply> {
    const pause = pauseMs === undefined ? '' : `&pause=${pauseMs}`;
    return this.http('POST', `/publish?topic=${topic}&prefix=${prefix}&count=${count}${pause}`);
  }

  async users(topic: string): Promise<string[]> {
    const entries = await this.http<Array<{ data: { user: string } }>>('GET', `/presence?topic=${topic}`);
    return entries.map((entry) => entry.data.user).sort();
  }

  presenceEvents(): Promise<string[]> {
    return this.http('GET', '/presence-events');
  }

  /** How many lines of Nest's log include `text`: its errors are on stderr, its warnings on stdout. */
  logged(stream: 'stdout' | 'stderr', text: string): number {
    return this.server[stream].split('\n').filter((line) => line.includes(text)).length;
  }
}

describe('three processes on one Redis', () => {
  const clients = new ClientTracker();
  let redis: RedisServer;
  let instances: Instance[] = [];

  beforeAll(async () => {
    requireBuilt([
      { sources: 'lib', output: 'dist' },
      { sources: 'test/fixtures', output: 'build/test/fixtures' },
    ]);
    redis = await RedisServer.start({ appendOnly: true });
    // The fixture's configuration; ServerProcess hands the child this process's environment.
    process.env.REDIS_URL = redis.url;
    process.env.PRESENCE_TTL = String(PRESENCE_TTL);
    instances = await Promise.all([0, 1, 2].map(() => Instance.start()));
  });
  afterEach(async () => {
    clients.dropAll();
    // A test that killed a process gets the next test a fresh one in its place.
    instances = await Promise.all(instances.map((instance) => (instance.killed ? Instance.start() : instance)));
  });
  afterAll(async () => {
    clients.dropAll();
    await Promise.all(instances.map((instance) => instance.server.stop().catch(() => instance.server.kill())));
    await redis?.remove();
    delete process.env.REDIS_URL;
    delete process.env.PRESENCE_TTL;
  });

  /** A member's client, its subscribe result, and what it received before it (recovered messages come first). */
  const join = async (instance: number, query: string): Promise<{ client: WsClient; result: { position?: StreamPosition; recovered: boolean }; before: string[] }> => {
    const client = clients.track(await WsClient.connect(instances[instance].url(`/member?${query}`)));
    const before: string[] = [];
    for (let text = await client.nextText(); ; text = await client.nextText()) {
      if (text.startsWith('subscribed ')) return { client, result: JSON.parse(text.slice('subscribed '.length)), before };
      before.push(text);
    }
  };

  /** Six subscribers of a history topic, two on each process, with the offset each subscribed at. */
  const historyMembers = async (topic: string): Promise<Array<{ client: WsClient; start: number }>> => {
    const members = [];
    for (let n = 0; n < 6; n++) {
      const { client, result } = await join(n % 3, `topic=${topic}`);
      members.push({ client, start: result.position!.offset });
    }
    return members;
  };

  /** The next `count` texts. */
  const texts = async (client: WsClient, count: number, timeoutMs?: number): Promise<string[]> => {
    const received: string[] = [];
    while (received.length < count) received.push(await client.nextText(timeoutMs));
    return received;
  };

  /** History messages (`already` first) until one at offset `top`; rejects past `timeoutMs` of silence. */
  const keptUpTo = async (client: WsClient, already: string[], top: number, timeoutMs = 10_000): Promise<Kept[]> => {
    const received = already.map((text) => JSON.parse(text) as Kept);
    while (received.length === 0 || received[received.length - 1].offset < top) received.push(JSON.parse(await client.nextText(timeoutMs)) as Kept);
    return received;
  };

  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, k) => from + k);

  it('delivers each message once to every subscriber on every process', async () => {
    const members: WsClient[] = [];
    for (let n = 0; n < 9; n++) members.push((await join(n % 3, 'topic=news')).client);
    const COUNT = 100;
    await instances[1].publish('news', 'm', COUNT);
    // Nothing more than each message once: the next thing each receives is the end marker, from another process.
    await instances[2].publish('news', 'end', 1);
    const expected = [...range(0, COUNT - 1).map((k) => `m${k}`), 'end0'];
    for (const member of members) expect(await texts(member, expected.length)).toEqual(expected);
  });

  it('keeps each publisher’s order, with publishers on every process', async () => {
    const COUNT = 100;
    const publishers: WsClient[] = [];
    const listeners: WsClient[] = [];
    for (let n = 0; n < 3; n++) publishers.push((await join(n, 'topic=order')).client);
    for (let n = 0; n < 6; n++) listeners.push((await join(n % 3, 'topic=order')).client);
    // Interleaved, none awaited: each publisher's route publishes its messages one after another.
    for (let k = 0; k < COUNT; k++) publishers.forEach((publisher, p) => publisher.ws.send(`${p}:${k}`));
    const inOrder = (p: number) => range(0, COUNT - 1).map((k) => `${p}:${k}`);
    const check = async (client: WsClient, from: number[]) => {
      const received = await texts(client, from.length * COUNT);
      for (const p of [0, 1, 2]) expect(received.filter((text) => text.startsWith(`${p}:`))).toEqual(from.includes(p) ? inOrder(p) : []);
    };
    for (const listener of listeners) await check(listener, [0, 1, 2]);
    // A publisher hears the others, not itself.
    for (const [p, publisher] of publishers.entries()) await check(publisher, [0, 1, 2].filter((other) => other !== p));
    await instances[0].publish('order', 'end', 1);
    for (const client of [...listeners, ...publishers]) expect(await client.nextText()).toBe('end0');
  });

  it('drops a process killed with SIGKILL from presence within its ttl, and tells the others it left', async () => {
    await join(0, 'topic=room:k&user=ann');
    await join(0, 'topic=room:k&user=amy');
    await join(1, 'topic=room:k&user=bob');
    await join(2, 'topic=room:k&user=cid');
    expect(await instances[1].users('room:k')).toEqual(['amy', 'ann', 'bob', 'cid']);
    await instances[0].kill();
    // presenceTtl plus one heartbeat is the bound the docs give; waited for up to a generous multiple of it.
    await eventually(async () => (await instances[1].users('room:k')).join() === 'bob,cid', 'the killed process to leave presence', PRESENCE_BOUND);
    expect(await instances[2].users('room:k')).toEqual(['bob', 'cid']);
    for (const survivor of [instances[1], instances[2]]) {
      await eventually(async () => (await survivor.presenceEvents()).filter((event) => event.startsWith('leave room:k')).length === 2, 'the leaves to be heard', PRESENCE_BOUND);
      expect((await survivor.presenceEvents()).filter((event) => event.startsWith('leave room:k')).sort()).toEqual(['leave room:k amy', 'leave room:k ann']);
    }
    // The living stay, heartbeating, past their own ttl.
    await sleep(2 * PRESENCE_TTL);
    expect(await instances[2].users('room:k')).toEqual(['bob', 'cid']);
  });

  it('recovers on another process what a client missed while its process was killed, then goes on live: no gap, no duplicate', async () => {
    const { client: first, result } = await join(0, 'topic=kept:r');
    const start = result.position!.offset;
    await instances[1].publish('kept:r', 'a', 5);
    const seen = await keptUpTo(first, [], start + 5);
    expect(seen.map((message) => [message.text, message.offset])).toEqual(range(0, 4).map((k) => [`a${k}`, start + 1 + k]));
    const last = seen[seen.length - 1];
    await instances[0].kill();
    // Publishing goes on from process 2 while the client reconnects to process 3 with its last position.
    const publishing = instances[1].publish('kept:r', 'b', 60, 5);
    await sleep(50);
    const { client: again, result: resumed, before } = await join(2, `topic=kept:r&offset=${last.offset}&epoch=${last.epoch}`);
    expect(resumed.recovered).toBe(true);
    await publishing;
    await instances[1].publish('kept:r', 'c', 5);
    const received = await keptUpTo(again, before, start + 70);
    expect(received.map((message) => message.offset)).toEqual(range(start + 6, start + 70));
    expect(received.map((message) => message.text)).toEqual([...range(0, 59).map((k) => `b${k}`), ...range(0, 4).map((k) => `c${k}`)]);
    expect(new Set(received.map((message) => message.epoch))).toEqual(new Set([last.epoch]));
  });

  it('loses nothing on a history topic when Redis is killed and restarted during traffic, logging one outage per process', async () => {
    const members = await historyMembers('kept:x');
    const outagesBefore = instances.map((instance) => instance.logged('stderr', 'is unreachable'));
    const failedReadsBefore = instances.map((instance) => instance.logged('stdout', 'could not read back'));
    // Two publishers on two processes, each retrying what was refused during the outage.
    const publishing = Promise.all([instances[0].publish('kept:x', 'p', 150, 10), instances[1].publish('kept:x', 'q', 150, 10)]);
    await texts(members[5].client, 20);
    await redis.kill();
    await sleep(300);
    await redis.restart();
    const [p, q] = await publishing;
    // The outage was met by the publishers, not only between their publishes.
    expect(p.refused + q.refused).toBeGreaterThan(0);
    const resolved = [...p.positions.map((position, k) => [position, `p${k}`] as const), ...q.positions.map((position, k) => [position, `q${k}`] as const)];
    const top = Math.max(...resolved.map(([position]) => position.offset));
    for (const [n, { client, start }] of members.entries()) {
      // The 20 member 5 already read were consecutive; the rest follow them.
      const received = await keptUpTo(client, [], top, 15_000);
      const offsets = received.map((message) => message.offset);
      expect(offsets).toEqual(range(n === 5 ? start + 21 : start + 1, top));
      // Every publish that resolved reached it, at its position. A refused attempt may have happened too (Redis
      // ran it but the reply was lost): then its retry is another message, so a text can appear twice.
      const textAt = new Map(received.map((message) => [message.offset, message.text]));
      for (const [position, text] of resolved) if (n !== 5 || position.offset > start + 20) expect(textAt.get(position.offset)).toBe(text);
    }
    expect(instances.map((instance, n) => instance.logged('stderr', 'is unreachable') - outagesBefore[n])).toEqual([1, 1, 1]);
    // A read-back tried while Redis was half back (live messages came, commands could not go) is logged once, not per message.
    for (const [n, instance] of instances.entries()) expect(instance.logged('stdout', 'could not read back') - failedReadsBefore[n]).toBeLessThanOrEqual(1);
  }, 45_000);

  it('reads back what a process missed while Redis dropped its subscriber connection during traffic', async () => {
    const members = await historyMembers('kept:cut');
    const outagesBefore = instances.map((instance) => instance.logged('stderr', 'is unreachable'));
    const COUNT = 300;
    const publishing = instances[0].publish('kept:cut', 'm', COUNT);
    const early = await texts(members[0].client, 20);
    // Each process's subscriber connection is dropped (what Redis also does to one past its output buffer limit);
    // what is published until it has subscribed again is not delivered to it live.
    expect(await redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')).toMatch(/^:[1-9]/);
    await publishing;
    for (const [n, { client, start }] of members.entries()) {
      const received = await keptUpTo(client, n === 0 ? early : [], start + COUNT);
      expect(received.map((message) => [message.offset, message.text])).toEqual(range(0, COUNT - 1).map((k) => [start + 1 + k, `m${k}`]));
    }
    expect(instances.map((instance, n) => instance.logged('stderr', 'is unreachable') - outagesBefore[n])).toEqual([1, 1, 1]);
  });
});
