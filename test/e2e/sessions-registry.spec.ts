/**
 * WebSocketSessions, the registry of open sessions, injected into a controller
 * and a service: listing and finding by route, params, protocol or predicate;
 * sessions leaving it when they end; broadcasts that reach exactly the
 * selected sessions and count the ones that were closing as failed.
 */
import 'reflect-metadata';
import { Controller, Injectable } from '@nestjs/common';
import {
  CloseReason,
  Frame,
  WebSocketRoute,
  WebSocketSessions,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { eventually } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { Opcode, RawClient } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();

/** A service of the application's own that uses the registry. */
@Injectable()
class Rooms {
  constructor(readonly sessions: WebSocketSessions) {}

  users(sessions: WebSocketServerSession[]): string[] {
    return sessions.map((session) => String(session.call.query.user));
  }
}

@Controller()
class RoomsController {
  constructor(private readonly sessions: WebSocketSessions) {}

  @WebSocketRoute('rooms/:room')
  room(session: DefaultWebSocketServerSession) {
    return this.member(session);
  }

  @WebSocketRoute('rooms/:room', { protocol: 'chat.v2' })
  roomV2(session: DefaultWebSocketServerSession) {
    return this.member(session);
  }

  @WebSocketRoute('lobby')
  lobby(session: DefaultWebSocketServerSession) {
    return this.member(session);
  }

  /** Says, before anything else, whether the registry already holds this session (a route with nothing to decide). */
  @WebSocketRoute('self')
  self(session: DefaultWebSocketServerSession) {
    return session.sendSerialized({ listed: this.sessions.list().includes(session) });
  }

  /** `say:<text>` broadcasts to the sender's room from the controller; `close` starts the server's close. */
  private async member(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) {
      const text = frame.readText();
      if (text.startsWith('say:')) {
        const result = await this.sessions.broadcast({ route: session.call.route, params: session.call.params }, text.slice(4));
        await session.sendSerialized({ result });
      } else if (text === 'close') {
        await session.close(new CloseReason(4000, 'closing'));
      }
    }
  }
}

describe.each(PLATFORMS)('WebSocketSessions (%s)', (platform) => {
  let t: TestApp;
  let rooms: Rooms;
  let registry: WebSocketSessions;
  // A long close timeout: a RawClient that never answers the server's Close keeps its session closing, not gone.
  beforeAll(async () => {
    t = await startApp([RoomsController], { closeTimeout: 60_000 }, [Rooms], { platform });
    rooms = t.app.get(Rooms);
    registry = rooms.sessions;
  });
  afterAll(() => t.close());
  afterEach(async () => {
    clients.dropAll();
    await eventually(() => registry.size === 0, 'every session of the test to leave the registry');
  });

  const join = async (path: string, user: string, protocol?: string) =>
    clients.track(await WsClient.connect(t.url(`${path}?user=${user}`), protocol));

  /** alice and bob (chat.v2) in room a, carol in room b, dave in the lobby; opened in that order. */
  async function everyone() {
    const alice = await join('/rooms/a', 'alice');
    const bob = await join('/rooms/a', 'bob', 'chat.v2');
    const carol = await join('/rooms/b', 'carol');
    const dave = await join('/lobby', 'dave');
    return { alice, bob, carol, dave };
  }

  const find = (user: string) => {
    const session = registry.find((s) => s.call.query.user === user);
    if (session === undefined) throw new Error(`no session of ${user}`);
    return session;
  };

  it('is the same singleton in a service and in the controller', () => {
    expect(registry).toBe(t.app.get(WebSocketSessions));
  });

  it('holds a session from its 101 on: its method finds itself there at its first step', async () => {
    const client = clients.track(await WsClient.connect(t.url('/self')));
    expect(JSON.parse(await client.nextText())).toEqual({ listed: true });
  });

  it('lists sessions by route, params, protocol and predicate, in the order they opened', async () => {
    await everyone();
    expect(registry.size).toBe(4);
    expect(rooms.users(registry.list())).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(rooms.users(registry.list({ route: '/rooms/:room' }))).toEqual(['alice', 'bob', 'carol']);
    expect(rooms.users(registry.list({ route: '/lobby' }))).toEqual(['dave']);
    expect(rooms.users(registry.list({ params: { room: 'a' } }))).toEqual(['alice', 'bob']);
    expect(rooms.users(registry.list({ params: { room: 'b' } }))).toEqual(['carol']);
    expect(rooms.users(registry.list({ params: { room: 'nope' } }))).toEqual([]);
    expect(rooms.users(registry.list({ protocol: 'chat.v2' }))).toEqual(['bob']);
    expect(rooms.users(registry.list({ route: '/rooms/:room', params: { room: 'a' }, protocol: 'chat.v2' }))).toEqual(['bob']);
    expect(rooms.users(registry.list({ route: '/rooms/:room', params: { room: 'b' }, protocol: 'chat.v2' }))).toEqual([]);
    expect(rooms.users(registry.list((s) => String(s.call.query.user).startsWith('c')))).toEqual(['carol']);
  });

  it('finds the first matching session, or undefined', async () => {
    await everyone();
    expect(registry.find({ params: { room: 'a' } })?.call.query.user).toBe('alice');
    expect(registry.find({ params: { room: 'b' } })?.call.query.user).toBe('carol');
    expect(registry.find({ protocol: 'chat.v2' })?.call.query.user).toBe('bob');
    expect(registry.find((s) => s.call.path === '/lobby')?.call.query.user).toBe('dave');
    expect(registry.find({ params: { room: 'zzz' } })).toBeUndefined();
  });

  it('forgets sessions that closed, or whose connection dropped', async () => {
    const { alice, carol } = await everyone();
    alice.ws.close(1000);
    await alice.waitClosed();
    await eventually(() => registry.size === 3, 'alice to leave');
    expect(rooms.users(registry.list())).toEqual(['bob', 'carol', 'dave']);
    carol.terminate();
    await eventually(() => registry.size === 2, 'carol to leave');
    expect(rooms.users(registry.list())).toEqual(['bob', 'dave']);
    expect(registry.find({ params: { room: 'b' } })).toBeUndefined();
  });

  it('broadcasts a text to exactly the selected sessions', async () => {
    const { alice, bob, carol, dave } = await everyone();
    expect(await registry.broadcast({ params: { room: 'a' } }, 'to a')).toEqual({ sent: 2, failed: 0 });
    // A marker to all after it: whoever was not selected sees the marker first.
    expect(await registry.broadcast(() => true, 'end')).toEqual({ sent: 4, failed: 0 });
    for (const client of [alice, bob]) {
      expect(await client.nextText()).toBe('to a');
      expect(await client.nextText()).toBe('end');
    }
    for (const client of [carol, dave]) expect(await client.nextText()).toBe('end');
  });

  it('broadcasts bytes as binary and a Frame as is', async () => {
    const { alice, bob, carol } = await everyone();
    expect(await registry.broadcast({ protocol: 'chat.v2' }, new Uint8Array([1, 2, 3]))).toEqual({ sent: 1, failed: 0 });
    expect(await registry.broadcast({ route: '/rooms/:room' }, new Frame.Text('framed'))).toEqual({ sent: 3, failed: 0 });
    expect(await bob.next()).toEqual({ data: Buffer.from([1, 2, 3]), isBinary: true });
    for (const client of [alice, bob, carol]) expect(await client.nextText()).toBe('framed');
  });

  it('broadcasts from the controller that injected it', async () => {
    const { alice, bob, carol, dave } = await everyone();
    alice.ws.send('say:hello room a');
    expect(await alice.nextText()).toBe('hello room a');
    expect(JSON.parse(await alice.nextText())).toEqual({ result: { sent: 2, failed: 0 } });
    expect(await bob.nextText()).toBe('hello room a');
    await registry.broadcast(() => true, 'end');
    expect(await bob.nextText()).toBe('end');
    for (const client of [carol, dave]) expect(await client.nextText()).toBe('end');
  });

  it('broadcastSerialized sends the value through each session’s converter', async () => {
    const { alice, bob, carol, dave } = await everyone();
    const value = { kind: 'news', items: [1, 'two', { three: 3 }] };
    expect(await registry.broadcastSerialized({ params: { room: 'a' } }, value)).toEqual({ sent: 2, failed: 0 });
    await registry.broadcast(() => true, 'end');
    for (const client of [alice, bob]) expect(JSON.parse(await client.nextText())).toEqual(value);
    for (const client of [alice, bob, carol, dave]) expect(await client.nextText()).toBe('end');
  });

  it('broadcasts to an iterable of sessions', async () => {
    const { alice, bob, carol, dave } = await everyone();
    const picked = new Set([find('alice'), find('dave')]);
    expect(await registry.broadcast(picked, 'picked')).toEqual({ sent: 2, failed: 0 });
    function* onlyCarol() {
      yield find('carol');
    }
    expect(await registry.broadcastSerialized(onlyCarol(), { to: 'carol' })).toEqual({ sent: 1, failed: 0 });
    expect(await registry.broadcast([], 'nobody')).toEqual({ sent: 0, failed: 0 });
    await registry.broadcast(() => true, 'end');
    expect(await alice.nextText()).toBe('picked');
    expect(await dave.nextText()).toBe('picked');
    expect(JSON.parse(await carol.nextText())).toEqual({ to: 'carol' });
    for (const client of [alice, bob, carol, dave]) expect(await client.nextText()).toBe('end');
  });

  it('counts a session that is closing as failed, and still reaches the others', async () => {
    const { alice, bob } = await everyone();
    const closing = clients.track(await RawClient.connect(t.port, '/rooms/a?user=zoe'));
    closing.send({ opcode: Opcode.TEXT, payload: 'close' });
    // The server's Close came; the client never answers it, so the session stays, closing.
    expect((await closing.readClose())?.code).toBe(4000);
    expect(rooms.users(registry.list({ params: { room: 'a' } }))).toEqual(['alice', 'bob', 'zoe']);
    expect(await registry.broadcast({ params: { room: 'a' } }, 'after')).toEqual({ sent: 2, failed: 1 });
    expect(await registry.broadcastSerialized({ params: { room: 'a' } }, 'after')).toEqual({ sent: 2, failed: 1 });
    expect(await registry.broadcast([find('zoe')], 'only the closing one')).toEqual({ sent: 0, failed: 1 });
    expect(await alice.nextText()).toBe('after');
    expect(await bob.nextText()).toBe('after');
    expect(await alice.nextText()).toBe('"after"');
    expect(await bob.nextText()).toBe('"after"');
  });

  it('closeAll closes every open session with the reason given, and they leave the registry', async () => {
    const { alice, bob, carol, dave } = await everyone();
    await registry.closeAll(5000, new CloseReason(4001, 'restart'));
    expect(registry.size).toBe(0);
    for (const client of [alice, bob, carol, dave]) expect(await client.waitClosed()).toEqual({ code: 4001, reason: 'restart' });
    // The routes still take new sessions afterwards.
    await join('/lobby', 'erin');
    expect(rooms.users(registry.list())).toEqual(['erin']);
  });
});
