/**
 * The sample app over ws clients: its routes, and its chat (welcome, member list, positions, recovery) on one
 * instance and on instances sharing a real redis-server through REDIS_URL. The page in a browser: sample-page.spec.ts.
 */
import type { StreamPosition } from 'nest-websocket-routes';
import { sleep } from '../support/async.js';
import { ChatMember } from '../support/chat-member.js';
import { ClientTracker } from '../support/client-tracker.js';
import { RedisServer } from '../support/redis-server.js';
import { startSample, type SampleInstance } from '../support/sample-instances.js';
import { RawClient, closePayload } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

describe('the sample app', () => {
  let instance: SampleInstance;
  let port: number;
  const clients = new ClientTracker();

  beforeAll(async () => {
    instance = await startSample();
    port = Number(new URL(instance.baseUrl).port);
  });
  afterEach(() => clients.dropAll());
  afterAll(() => instance.app.close());

  const connect = async (path: string, protocol?: string) => {
    const client = await WsClient.connect(`ws://127.0.0.1:${port}${path}`, protocol);
    return clients.track(client);
  };

  it('echoes on /echo', async () => {
    const client = await connect('/echo');
    client.ws.send('ping?');
    expect(await client.nextText()).toBe('ping?');
  });

  it('runs its own close sequence on /raw-echo: pong, fragment echo, close echo, TCP end', async () => {
    const client = await RawClient.connect(port, '/raw-echo');
    clients.track(client);
    client.send({ opcode: 0x9, payload: 'are you there' });
    expect(await client.readFrame()).toMatchObject({ opcode: 0xa, payload: Buffer.from('are you there') });
    client.send({ opcode: 0x1, payload: 'AB', fin: false });
    client.send({ opcode: 0x0, payload: 'C', fin: true });
    expect(await client.readFrame()).toMatchObject({ opcode: 0x1, fin: false, payload: Buffer.from('AB') });
    expect(await client.readFrame()).toMatchObject({ opcode: 0x0, fin: true, payload: Buffer.from('C') });
    client.send({ opcode: 0x8, payload: closePayload(4001, 'bye') });
    expect(await client.readClose()).toEqual({ code: 4001, reason: 'bye' });
    expect(await client.waitForEnd()).toBe(true);
  });

  const joinChat = async (room: string, name: string, since?: StreamPosition) => {
    const member = await ChatMember.join(`http://127.0.0.1:${port}`, room, name, since);
    clients.track(member);
    return member;
  };

  it('runs chat rooms on /chat/rooms/:room with chat.v1: welcome, member list, and what the room says with consecutive positions', async () => {
    const alice = await joinChat('hall', 'alice');
    expect(alice.ws.protocol).toBe('chat.v1');
    expect(alice.welcome).toEqual({ type: 'welcome', recovered: false, position: { offset: 0, epoch: expect.any(String) } });
    await alice.untilMembers('alice');
    const bob = await joinChat('hall', 'bob');
    await alice.untilMembers('alice', 'bob');
    await bob.untilMembers('alice', 'bob');
    const carol = await joinChat('kitchen', 'carol');
    await carol.untilMembers('carol');

    alice.send('hello bob');
    await bob.untilLine('alice: hello bob');
    await alice.untilLine('alice: hello bob');
    bob.ws.close(1000);
    await alice.untilLine('bob left');
    await alice.untilMembers('alice');
    expect(alice.lines).toEqual(['alice joined', 'bob joined', 'alice: hello bob', 'bob left']);
    // Each room event carries its place in the room's history, the way back after a dropped connection.
    const { epoch } = alice.welcome!.position!;
    expect(alice.positions).toEqual([1, 2, 3, 4].map((offset) => ({ offset, epoch })));
    // Nothing from the hall reached the other room.
    await sleep(300);
    expect(carol.lines).toEqual(['carol joined']);
    expect(carol.members).toEqual(['carol']);
  });

  it('gives a member that reconnects with its position what it missed, before its welcome, then live messages', async () => {
    const alice = await joinChat('porch', 'alice');
    const bob = await joinChat('porch', 'bob');
    await bob.untilLine('bob joined');
    const last = bob.positions.at(-1)!;
    bob.terminate();
    await alice.untilLine('bob left');
    alice.send('one');
    alice.send('two');
    await alice.untilLine('alice: two');

    const back = await joinChat('porch', 'bob', last);
    expect(back.welcome).toMatchObject({ recovered: true, position: { offset: last.offset + 3, epoch: last.epoch } });
    expect(back.linesBeforeWelcome).toEqual(['bob left', 'alice: one', 'alice: two']);
    alice.send('three');
    await back.untilLine('alice: three');
    expect(back.lines).toEqual(['bob left', 'alice: one', 'alice: two', 'bob joined', 'alice: three']);
  });

  it('says recovered: false to a position of another epoch, and closes with 1008 a malformed one', async () => {
    await joinChat('attic', 'alice');
    const stranger = await joinChat('attic', 'bob', { offset: 1, epoch: 'not-this-one' });
    expect(stranger.welcome).toMatchObject({ recovered: false });
    expect(stranger.linesBeforeWelcome).toEqual([]);
    const malformed = clients.track(await WsClient.connect(`ws://127.0.0.1:${port}/chat/rooms/attic?name=eve&offset=soon&epoch=e`, 'chat.v1'));
    const { code, reason } = await malformed.waitClosed();
    expect(code).toBe(1008);
    expect(reason).toContain('since must be a position { offset, epoch }');
  });

  it('closes with 1008 a chat member whose room name is longer than a topic may be, and the room carries on', async () => {
    const alice = await joinChat('lobby', 'alice');
    const tooLong = await connect(`/chat/rooms/${'r'.repeat(300)}?name=mallory`, 'chat.v1');
    const { code, reason } = await tooLong.waitClosed();
    expect(code).toBe(1008);
    expect(reason).toContain('a topic may have at most 256 bytes of UTF-8, this one has 305');
    alice.send('still here');
    await alice.untilLine('alice: still here');
  });

  // The README: the module's deflate applies to the default-session routes; the raw /raw-echo negotiates no extension.
  const negotiatedExtensions = async (path: string, protocol?: string) => {
    const client = await WsClient.connect(`ws://127.0.0.1:${port}${path}`, protocol, { perMessageDeflate: true });
    return clients.track(client).ws.extensions;
  };

  it.each<[string, string | undefined]>([
    ['/echo', undefined],
    ['/json', undefined],
    ['/chat/rooms/lobby?name=alice', 'chat.v1'],
  ])('agrees to permessage-deflate on %s', async (path, protocol) => {
    expect(await negotiatedExtensions(path, protocol)).toMatch(/^permessage-deflate/);
  });

  it('negotiates no permessage-deflate on the raw /raw-echo', async () => {
    expect(await negotiatedExtensions('/raw-echo')).toBe('');
  });

  it('refuses the chat route without the chat.v1 subprotocol', async () => {
    await expect(connect('/chat/rooms/lobby')).rejects.toThrow('Upgrade refused with 400');
  });

  it('answers JSON on /json and reports bad JSON without closing', async () => {
    const client = await connect('/json');
    client.ws.send(JSON.stringify({ op: 'add', values: [1, 2, 39] }));
    expect(JSON.parse(await client.nextText())).toEqual({ result: 42 });
    client.ws.send('{not json');
    expect(JSON.parse(await client.nextText())).toHaveProperty('error');
    client.ws.send(JSON.stringify({ op: 'multiply', values: [6, 7] }));
    expect(JSON.parse(await client.nextText())).toEqual({ result: 42 });
  });
});

describe('the sample chat on instances sharing a Redis (REDIS_URL)', () => {
  let redis: RedisServer;
  let instances: SampleInstance[];
  const members = new ClientTracker();

  beforeAll(async () => {
    redis = await RedisServer.start();
    instances = [await startSample(redis.url), await startSample(redis.url)];
  });
  afterEach(() => members.dropAll());
  afterAll(async () => {
    for (const instance of instances ?? []) await instance.app.close();
    await redis?.remove();
  });

  const joinChat = async (instance: SampleInstance, room: string, name: string, since?: StreamPosition) =>
    members.track(await ChatMember.join(instance.baseUrl, room, name, since));

  it('lets members on two instances chat, each seeing both in the member list', async () => {
    const alice = await joinChat(instances[0], 'lobby', 'alice');
    const bob = await joinChat(instances[1], 'lobby', 'bob');
    await alice.untilMembers('alice', 'bob');
    await bob.untilMembers('alice', 'bob');
    alice.send('hello from 1');
    bob.send('hello from 2');
    await bob.untilLine('alice: hello from 1');
    await alice.untilLine('bob: hello from 2');
    for (const member of [alice, bob]) {
      expect(member.lines.filter((line) => line.includes('hello'))).toHaveLength(2);
    }
  });

  it('gives a member whose connection dropped what it missed when it reconnects to the other instance, then live messages', async () => {
    const alice = await joinChat(instances[0], 'porch', 'alice');
    const bob = await joinChat(instances[1], 'porch', 'bob');
    await bob.untilLine('bob joined');
    const last = bob.positions.at(-1)!;
    bob.terminate();
    await alice.untilLine('bob left');
    await alice.untilMembers('alice');
    alice.send('one');
    alice.send('two');
    await alice.untilLine('alice: two');

    const back = await joinChat(instances[0], 'porch', 'bob', last);
    expect(back.welcome).toMatchObject({ recovered: true, position: { offset: last.offset + 3, epoch: last.epoch } });
    expect(back.linesBeforeWelcome).toEqual(['bob left', 'alice: one', 'alice: two']);
    await alice.untilMembers('alice', 'bob');
    alice.send('three');
    await back.untilLine('alice: three');
    expect(back.lines).toEqual(['bob left', 'alice: one', 'alice: two', 'bob joined', 'alice: three']);
  });

  it('shows only the live members once an instance with members on it is closed', async () => {
    const third = await startSample(redis.url);
    const alice = await joinChat(instances[0], 'garden', 'alice');
    const dan = await joinChat(instances[1], 'garden', 'dan');
    await joinChat(third, 'garden', 'bob');
    await joinChat(third, 'garden', 'cid');
    await alice.untilMembers('alice', 'bob', 'cid', 'dan');
    await third.app.close();
    await alice.untilMembers('alice', 'dan');
    await dan.untilMembers('alice', 'dan');
  });
});
