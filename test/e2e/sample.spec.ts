import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { Test } from '@nestjs/testing';
import { AppModule } from '../../sample/app.module.js';
import { ClientTracker } from '../support/client-tracker.js';
import { RawClient, closePayload } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

describe('the sample app', () => {
  let app: INestApplication;
  let port: number;
  const clients = new ClientTracker();

  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    port = (app.getHttpServer().address() as AddressInfo).port;
  });
  afterEach(() => clients.dropAll());
  afterAll(() => app.close());

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

  it('broadcasts chat messages to the room on /chat/rooms/:room with chat.v1', async () => {
    const alice = await connect('/chat/rooms/lobby?name=alice', 'chat.v1');
    expect(alice.ws.protocol).toBe('chat.v1');
    expect(JSON.parse(await alice.nextText())).toEqual({ type: 'join', name: 'alice' });
    const bob = await connect('/chat/rooms/lobby?name=bob', 'chat.v1');
    expect(JSON.parse(await alice.nextText())).toEqual({ type: 'join', name: 'bob' });
    expect(JSON.parse(await bob.nextText())).toEqual({ type: 'join', name: 'bob' });
    const elsewhere = await connect('/chat/rooms/kitchen?name=carol', 'chat.v1');
    expect(JSON.parse(await elsewhere.nextText())).toEqual({ type: 'join', name: 'carol' });

    alice.ws.send('hello bob');
    const expected = { type: 'message', name: 'alice', text: 'hello bob' };
    expect(JSON.parse(await alice.nextText())).toEqual(expected);
    expect(JSON.parse(await bob.nextText())).toEqual(expected);

    bob.ws.close(1000);
    expect(JSON.parse(await alice.nextText())).toEqual({ type: 'leave', name: 'bob' });
    // Nothing from the lobby reached the other room.
    await expect(elsewhere.next(300)).rejects.toThrow('Timed out');
  });

  it('closes with 1008 a chat member whose room name is longer than a topic may be, and the room carries on', async () => {
    const alice = await connect('/chat/rooms/lobby?name=alice', 'chat.v1');
    expect(JSON.parse(await alice.nextText())).toEqual({ type: 'join', name: 'alice' });
    const tooLong = await connect(`/chat/rooms/${'r'.repeat(300)}?name=mallory`, 'chat.v1');
    const { code, reason } = await tooLong.waitClosed();
    expect(code).toBe(1008);
    expect(reason).toContain('a topic may have at most 256 bytes of UTF-8, this one has 305');
    alice.ws.send('still here');
    expect(JSON.parse(await alice.nextText())).toEqual({ type: 'message', name: 'alice', text: 'still here' });
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
