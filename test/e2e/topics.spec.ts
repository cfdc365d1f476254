/**
 * Topics in one process: sessions subscribe and unsubscribe (from their
 * handler, as a peer asks), WebSocketSessions.publish and publishSerialized
 * reach exactly the topic's subscribers but the excepted sender, a session's
 * subscriptions end with it, and bad input (topic names, too many
 * subscriptions, a publish after shutdown) gets a clear error while the
 * other sessions carry on.
 */
import 'reflect-metadata';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Controller } from '@nestjs/common';
import {
  ClosedSendChannelError,
  Frame,
  WebSocketRoute,
  WebSocketSessions,
  WebSocketsModule,
  WebSocketUpgrade,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { eventually } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { initApp, PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();
const MAX_SUBSCRIPTIONS = 3;
/** How the farewell route's goodbye publishes went: a result, or the error's message. */
const farewells: unknown[] = [];
/** The linger route's handler: whether it runs past its connection, and what ends it. */
const lingering = { afterConnection: false, release: () => undefined as void };

/**
 * A peer's commands: `sub:<topic>`, `unsub:<topic>`, `is:<topic>`, `say:<topic>:<text>` (publish to the
 * others). Each is answered `{ ok }`, `{ subscribed }`, `{ result }` or `{ error }` (the error's name and message).
 */
@Controller()
class TopicsController {
  constructor(private readonly sessions: WebSocketSessions) {}

  @WebSocketRoute('topics')
  async member(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) {
      const [command, topic, ...rest] = frame.readText().split(':');
      try {
        await session.sendSerialized(await this.run(session, command, topic, rest.join(':')));
      } catch (error) {
        await session.sendSerialized({ error: `${(error as Error).name}: ${(error as Error).message}` });
      }
    }
  }

  /** Subscribes to "linger", then stays in its handler after the connection ended, until `release` is called. */
  @WebSocketRoute('linger')
  async linger(session: DefaultWebSocketServerSession) {
    await session.subscribe('linger');
    await session.send('subscribed');
    for await (const frame of session.incoming) void frame;
    lingering.afterConnection = true;
    await new Promise<void>((resolve) => (lingering.release = resolve));
  }

  /** Subscribes to "news"; when its session ends, tells the others it left and records how that publish went. */
  @WebSocketRoute('farewell')
  async farewell(session: DefaultWebSocketServerSession) {
    await session.subscribe('news');
    await session.send('subscribed');
    try {
      for await (const frame of session.incoming) void frame;
    } finally {
      farewells.push(await this.sessions.publish('news', 'left', { except: session }).catch((error: Error) => error.message));
    }
  }

  private async run(session: DefaultWebSocketServerSession, command: string, topic: string, text: string): Promise<object> {
    if (command === 'sub') return { ok: await session.subscribe(topic).then(() => true) };
    if (command === 'unsub') return { ok: await session.unsubscribe(topic).then(() => true) };
    if (command === 'is') return { subscribed: session.isSubscribed(topic) };
    return { result: await this.sessions.publish(topic, text, { except: session }) };
  }
}

describe.each(PLATFORMS)('topics (%s)', (platform) => {
  let t: TestApp;
  let registry: WebSocketSessions;
  beforeAll(async () => {
    t = await startApp([TopicsController], { maxSubscriptionsPerSession: MAX_SUBSCRIPTIONS }, [], { platform });
    registry = t.app.get(WebSocketSessions);
  });
  afterAll(() => t.close());
  afterEach(async () => {
    clients.dropAll();
    await eventually(() => registry.size === 0, 'every session of the test to leave the registry');
  });

  const connect = async (user: string) => clients.track(await WsClient.connect(t.url(`/topics?user=${user}`)));
  const ask = async (client: WsClient, command: string) => {
    client.ws.send(command);
    return JSON.parse(await client.nextText()) as Record<string, unknown>;
  };
  const sessionOf = (user: string): WebSocketServerSession => {
    const session = registry.find((s) => s.call.query.user === user);
    if (session === undefined) throw new Error(`no session of ${user}`);
    return session;
  };
  /** alice and bob in "news", carol in "sport", dave in none. */
  async function everyone() {
    const [alice, bob, carol, dave] = await Promise.all(['alice', 'bob', 'carol', 'dave'].map(connect));
    expect(await ask(alice, 'sub:news')).toEqual({ ok: true });
    expect(await ask(bob, 'sub:news')).toEqual({ ok: true });
    expect(await ask(carol, 'sub:sport')).toEqual({ ok: true });
    return { alice, bob, carol, dave };
  }
  /** A marker to every session: a client that got nothing else before it got nothing it should not have. */
  async function endMarker(...expecting: WsClient[]) {
    await registry.broadcast(() => true, 'end');
    for (const client of expecting) expect(await client.nextText()).toBe('end');
  }

  it('publishes a text to exactly the topic’s subscribers', async () => {
    const { alice, bob, carol, dave } = await everyone();
    expect(await registry.publish('news', 'headline')).toEqual({ position: undefined });
    expect(await registry.publish('sport', 'score')).toEqual({ position: undefined });
    expect(await registry.publish('weather', 'nobody listens')).toEqual({ position: undefined });
    for (const client of [alice, bob]) expect(await client.nextText()).toBe('headline');
    expect(await carol.nextText()).toBe('score');
    await endMarker(alice, bob, carol, dave);
  });

  it('publishes bytes as binary, a Frame as is, and a value through the converter', async () => {
    const { alice, bob, carol, dave } = await everyone();
    expect(await registry.publish('news', new Uint8Array([1, 2, 3]))).toEqual({ position: undefined });
    expect(await registry.publish('news', new Frame.Text('framed'))).toEqual({ position: undefined });
    const value = { kind: 'goal', minute: 90, by: ['x', { y: 1 }] };
    expect(await registry.publishSerialized('sport', value)).toEqual({ position: undefined });
    for (const client of [alice, bob]) {
      expect(await client.next()).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
      expect(await client.nextText()).toBe('framed');
    }
    expect(JSON.parse(await carol.nextText())).toEqual(value);
    await endMarker(alice, bob, carol, dave);
  });

  it('leaves out the excepted session: a sender does not hear itself', async () => {
    const { alice, bob, carol, dave } = await everyone();
    expect(await ask(alice, 'say:news:hi all')).toEqual({ result: { position: undefined } });
    expect(await bob.nextText()).toBe('hi all');
    expect(await registry.publishSerialized('news', 'to the others', { except: sessionOf('bob') })).toEqual({ position: undefined });
    expect(await alice.nextText()).toBe('"to the others"');
    await endMarker(alice, bob, carol, dave);
  });

  it('subscribes once however often asked, and unsubscribes', async () => {
    const { alice, bob, carol, dave } = await everyone();
    expect(await ask(alice, 'sub:news')).toEqual({ ok: true });
    expect(await ask(alice, 'is:news')).toEqual({ subscribed: true });
    expect(await ask(alice, 'is:sport')).toEqual({ subscribed: false });
    expect(await registry.publish('news', 'once')).toEqual({ position: undefined });
    expect(await alice.nextText()).toBe('once');
    expect(await ask(alice, 'unsub:news')).toEqual({ ok: true });
    expect(await ask(alice, 'unsub:never-joined')).toEqual({ ok: true });
    expect(await ask(alice, 'is:news')).toEqual({ subscribed: false });
    expect(await registry.publish('news', 'after')).toEqual({ position: undefined });
    expect(await bob.nextText()).toBe('once');
    expect(await bob.nextText()).toBe('after');
    await endMarker(alice, bob, carol, dave);
  });

  it('ends a session’s subscriptions with it; subscribing a session that ended rejects quietly', async () => {
    const { alice, bob } = await everyone();
    const gone = sessionOf('alice');
    alice.ws.close(1000);
    await alice.waitClosed();
    await eventually(() => registry.size === 3, 'alice to leave');
    expect(gone.isSubscribed('news')).toBe(false);
    // Not even counted as failed: she is out of the index, not a subscriber whose send failed.
    expect(await registry.publish('news', 'without alice')).toEqual({ position: undefined });
    expect(await bob.nextText()).toBe('without alice');
    await expect(gone.subscribe('news')).rejects.toThrow(ClosedSendChannelError);
    expect(gone.isSubscribed('news')).toBe(false);
    expect(await registry.publish('news', 'still without alice')).toEqual({ position: undefined });
    expect(await bob.nextText()).toBe('still without alice');
  });

  it('ends the subscriptions when the connection closes, though the handler still runs', async () => {
    lingering.afterConnection = false;
    try {
      const client = clients.track(await WsClient.connect(t.url('/linger')));
      expect(await client.nextText()).toBe('subscribed');
      expect(await registry.publish('linger', 'while open')).toEqual({ position: undefined });
      client.ws.close(1000);
      await client.waitClosed();
      await eventually(() => lingering.afterConnection, 'the handler to run past its connection');
      expect(registry.size).toBe(1);
      expect(await registry.publish('linger', 'after the end')).toEqual({ position: undefined });
    } finally {
      lingering.release();
    }
  });

  it(`refuses a subscription past maxSubscriptionsPerSession (${MAX_SUBSCRIPTIONS}); the session and the others carry on`, async () => {
    const { alice, bob, carol, dave } = await everyone();
    expect(await ask(alice, 'sub:a')).toEqual({ ok: true });
    expect(await ask(alice, 'sub:b')).toEqual({ ok: true });
    const refused = await ask(alice, 'sub:c');
    expect(refused.error).toMatch(/^RangeError: session\.subscribe\("c"\): .*already subscribes to 3 topics \(maxSubscriptionsPerSession\)/);
    expect(refused.error).toContain('raise maxSubscriptionsPerSession in WebSocketsModule.forRoot()');
    expect(await ask(alice, 'is:c')).toEqual({ subscribed: false });
    // One she has is no new subscription; after leaving one there is room again.
    expect(await ask(alice, 'sub:news')).toEqual({ ok: true });
    expect(await ask(alice, 'unsub:a')).toEqual({ ok: true });
    expect(await ask(alice, 'sub:c')).toEqual({ ok: true });
    expect(await ask(dave, 'sub:c')).toEqual({ ok: true });
    expect(await registry.publish('c', 'to c')).toEqual({ position: undefined });
    for (const client of [alice, dave]) expect(await client.nextText()).toBe('to c');
    await endMarker(alice, bob, carol, dave);
  });

  it('refuses topics that are empty or longer than 256 bytes of UTF-8, naming the limit', async () => {
    const { alice, bob, carol, dave } = await everyone();
    const longest = 'é'.repeat(128); // 256 bytes
    expect(await ask(alice, `sub:${longest}`)).toEqual({ ok: true });
    expect(await registry.publish(longest, 'longest')).toEqual({ position: undefined });
    expect(await alice.nextText()).toBe('longest');
    const tooLong = `${longest}a`;
    expect((await ask(alice, `sub:${tooLong}`)).error).toMatch(/^RangeError: session\.subscribe\(\): a topic may have at most 256 bytes of UTF-8, this one has 257: .*The topic: "é+… \(a string\)$/);
    expect((await ask(alice, 'sub:')).error).toBe('TypeError: session.subscribe(): a topic must be a non-empty string, got "" (a string)');
    await expect(registry.publish(tooLong, 'x')).rejects.toThrow(/^WebSocketSessions\.publish\(\): a topic may have at most 256 bytes of UTF-8, this one has 257/);
    await expect(registry.publishSerialized('', 'x')).rejects.toThrow('WebSocketSessions.publishSerialized(): a topic must be a non-empty string');
    await expect(registry.publish(42 as unknown as string, 'x')).rejects.toThrow('got 42 (a number)');
    await expect(registry.publish('news', { not: 'bytes' } as unknown as string)).rejects.toMatchObject({ name: 'TypeError' });
    expect(await registry.publish('news', 'still works')).toEqual({ position: undefined });
    for (const client of [alice, bob]) expect(await client.nextText()).toBe('still works');
    await endMarker(alice, bob, carol, dave);
  });

  it('reaches many subscribers of one topic and none of the others', async () => {
    const many = await Promise.all(Array.from({ length: 40 }, (_, n) => connect(`u${n}`)));
    await Promise.all(many.map((client, n) => ask(client, `sub:room${n % 4}`)));
    expect(await registry.publish('room2', 'to room 2')).toEqual({ position: undefined });
    for (const [n, client] of many.entries()) if (n % 4 === 2) expect(await client.nextText()).toBe('to room 2');
    await endMarker(...many);
  });
});

describe('topics at application shutdown', () => {
  it('lets handlers publish while shutdown closes them, and rejects a publish once the sessions are closed, with what to do', async () => {
    const t = await startApp([TopicsController]);
    const registry = t.app.get(WebSocketSessions);
    const members = await Promise.all([0, 1].map(async () => clients.track(await WsClient.connect(t.url('/farewell')))));
    for (const member of members) expect(await member.nextText()).toBe('subscribed');
    farewells.length = 0;
    await t.close();
    clients.dropAll();
    // Every subscriber was closing: nobody to reach, and no error for the handlers.
    expect(farewells).toEqual([{ position: undefined }, { position: undefined }]);
    await expect(registry.publish('news', 'too late')).rejects.toThrow(
      'WebSocketSessions.publish("news") after application shutdown closed the sessions: there is nobody to publish to. Stop what publishes',
    );
    await expect(registry.publishSerialized('news', 'too late')).rejects.toThrow('WebSocketSessions.publishSerialized("news") after application shutdown');
  });
});

describe('topics for a WebSocketUpgrade session', () => {
  it('refuses to subscribe, saying topics are for sessions of routes', async () => {
    const upgrade = new WebSocketUpgrade({}, async (session: WebSocketServerSession) => {
      const refusal = await session.subscribe('news').catch((error: Error) => error.message);
      await session.send(`${String(refusal)} / ${String(session.isSubscribed('news'))}`);
    });
    const server = createServer();
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade.handle(request, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const client = clients.track(await WsClient.connect(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/mine`));
      expect(await client.nextText()).toBe(
        'session.subscribe(): this session is not in a WebSocketSessions registry (it came from WebSocketUpgrade), ' +
          'and topics live there: subscribe sessions of @WebSocketRoute methods / false',
      );
    } finally {
      clients.dropAll();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('maxSubscriptionsPerSession option', () => {
  it.each([0, 1.5, '10'])('refuses %p at startup', async (value) => {
    await expect(initApp([TopicsController], [WebSocketsModule.forRoot({ maxSubscriptionsPerSession: value as number })])).rejects.toThrow(
      /WebSockets option "maxSubscriptionsPerSession" must be an integer from 1 to/,
    );
  });
});
