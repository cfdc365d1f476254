/**
 * `nest-websocket-routes/testing` end to end, used the way a user would:
 * a TestingModule app, `connectWebSocket`, and every method of the client
 * against real routes (echo, close with a code, subprotocol, pings, fragments).
 */
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Controller, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  CloseReason,
  Frame,
  FrameType,
  WebSocketRoute,
  WebSocketsModule,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import {
  connectWebSocket,
  WebSocketHandshakeError,
  WebSocketReceiveError,
  type ConnectWebSocketOptions,
  type WebSocketTestClient,
} from 'nest-websocket-routes/testing';
import { deferred, sleep, within } from '../support/async.js';

/** Close reasons the `record` route's sessions ended with, by the `id` query parameter. */
const recorded = new Map<string, ReturnType<typeof deferred<CloseReason | null>>>();
function recordedFor(id: string) {
  let entry = recorded.get(id);
  if (entry === undefined) recorded.set(id, (entry = deferred<CloseReason | null>()));
  return entry;
}

const MANY = 3000;

@Controller()
class TestedController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  /** Raw, so it sees the Close the client answers with, and records it by the `id` query parameter. */
  @WebSocketRoute('bye', { raw: true })
  async bye(session: WebSocketServerSession) {
    await session.send('one');
    await session.send('two');
    await session.send(Buffer.from([1, 2, 3]));
    await session.send(new Frame.Close(new CloseReason(4000, 'bye')));
    let answer: CloseReason | null = null;
    for await (const frame of session.incoming) {
      if (frame.frameType === FrameType.CLOSE) {
        answer = frame.readReason();
        break;
      }
    }
    recordedFor(String(session.call.query.id)).resolve(answer);
  }

  @WebSocketRoute('chat', { protocol: 'chat.v1' })
  async chat(session: DefaultWebSocketServerSession) {
    await session.send(`protocol ${session.call.protocol}`);
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('headers')
  async headers(session: DefaultWebSocketServerSession) {
    await session.send(String(session.call.headers['x-token']));
  }

  @WebSocketRoute('pinged', { pingInterval: 50, timeout: 200 })
  async pinged(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('fragments')
  async fragments(session: DefaultWebSocketServerSession) {
    await session.send(new Frame.Text(false, 'hel'));
    await session.send(new Frame.Ping('between'));
    await session.send(new Frame.Text(false, 'lo '));
    await session.send(new Frame.Text(true, 'wörld'));
    await session.send(new Frame.Binary(false, Buffer.from([1])));
    await session.send(new Frame.Binary(true, Buffer.from([2, 3])));
    await session.send('after');
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('many')
  async many(session: DefaultWebSocketServerSession) {
    for (let i = 0; i < MANY; i++) await session.send(`message ${i}`);
    await session.send(Buffer.alloc(100_000, 7));
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('record')
  async record(session: DefaultWebSocketServerSession) {
    await session.send('ready');
    recordedFor(session.call.query.id as string).resolve(await session.closeReason);
  }
}

async function createApp(): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({
    imports: [WebSocketsModule.forRoot()],
    controllers: [TestedController],
  }).compile();
  return moduleRef.createNestApplication({ logger: false });
}

const httpServer = (app: INestApplication) => app.getHttpServer() as Server;

describe('nest-websocket-routes/testing', () => {
  let app: INestApplication;
  const clients: WebSocketTestClient[] = [];

  /** connectWebSocket on the shared app; the client is dropped after the test whatever happens. */
  async function connect(path: string, options?: ConnectWebSocketOptions) {
    const client = await connectWebSocket(app, path, options);
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    app = await createApp();
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.terminate();
  });

  afterAll(async () => {
    await app.close();
  });

  describe('connectWebSocket', () => {
    it('starts an app that is not listening on a free loopback port, once for concurrent connects', async () => {
      const fresh = await createApp();
      try {
        expect(httpServer(fresh).listening).toBe(false);
        const [a, b] = await Promise.all([connectWebSocket(fresh, '/echo'), connectWebSocket(fresh, 'echo')]);
        const address = httpServer(fresh).address() as AddressInfo;
        expect(address.address).toBe('127.0.0.1');
        expect(a.url).toBe(`ws://127.0.0.1:${address.port}/echo`);
        expect(b.url).toBe(a.url);
        a.send('a');
        b.send('b');
        expect(await a.receiveText()).toBe('a');
        expect(await b.receiveText()).toBe('b');
        await Promise.all([a.close(), b.close()]);
      } finally {
        await fresh.close();
      }
    });

    it('uses the address of an app that listens already', async () => {
      const listening = await createApp();
      try {
        await listening.listen(0, '127.0.0.1');
        const { port } = httpServer(listening).address() as AddressInfo;
        const client = await connectWebSocket(listening, '/echo');
        expect(client.url).toBe(`ws://127.0.0.1:${port}/echo`);
        client.send('hi');
        expect(await client.receiveText()).toBe('hi');
        await client.close();
      } finally {
        await listening.close();
      }
    });

    it('sends extra headers', async () => {
      const client = await connect('/headers', { headers: { 'X-Token': 'secret' } });
      expect(await client.receiveText()).toBe('secret');
    });

    it('negotiates a subprotocol, and reports none when the route has none', async () => {
      const chat = await connect('/chat', { protocols: ['other', 'chat.v1'] });
      expect(chat.protocol).toBe('chat.v1');
      expect(await chat.receiveText()).toBe('protocol chat.v1');
      const echo = await connect('/echo');
      expect(echo.protocol).toBeUndefined();
    });

    it('rejects with the status, headers and body when the server refuses the upgrade', async () => {
      const unknown = await connectWebSocket(app, '/nowhere').catch((error: unknown) => error);
      expect(unknown).toBeInstanceOf(WebSocketHandshakeError);
      expect(unknown).toMatchObject({ status: 404 });
      expect((unknown as Error).message).toMatch(/HTTP 404/);

      const wrongProtocol = await connectWebSocket(app, '/chat', { protocols: 'chat.v2' }).catch((error: unknown) => error);
      expect(wrongProtocol).toBeInstanceOf(WebSocketHandshakeError);
      expect(wrongProtocol).toMatchObject({ status: 400 });
      expect((wrongProtocol as WebSocketHandshakeError).body.length).toBeGreaterThan(0);

      // User headers win over the handshake's own, so a test can send a bad handshake on purpose.
      const oldVersion = await connectWebSocket(app, '/echo', { headers: { 'Sec-WebSocket-Version': '8' } }).catch(
        (error: unknown) => error,
      );
      expect(oldVersion).toMatchObject({ status: 426, headers: { 'sec-websocket-version': '13' } });
    });
  });

  describe('sending and receiving', () => {
    it('sends and receives text, binary and JSON, in order', async () => {
      const client = await connect('/echo');
      client.send('hello');
      client.send(new Uint8Array([1, 2, 3]));
      client.sendJson({ n: 1, tags: ['a'] });
      client.send('last');
      expect(await client.receiveText()).toBe('hello');
      expect(await client.receiveBinary()).toEqual(Buffer.from([1, 2, 3]));
      expect(await client.receiveJson<{ n: number; tags: string[] }>()).toEqual({ n: 1, tags: ['a'] });
      const frame = await client.receive();
      expect(frame.frameType).toBe(FrameType.TEXT);
      expect(frame.fin).toBe(true);
      expect(frame.readText()).toBe('last');
    });

    it('queues what arrives before anyone receives, beyond the queue bound, and loses nothing', async () => {
      const client = await connect('/many');
      // Let the server run ahead: the client stops reading at its bound and resumes as the test reads.
      await sleep(300);
      for (let i = 0; i < MANY; i++) expect(await client.receiveText()).toBe(`message ${i}`);
      expect(await client.receiveBinary()).toEqual(Buffer.alloc(100_000, 7));
      client.send('still reading');
      expect(await client.receiveText()).toBe('still reading');
    });

    it('serves concurrent receives in call order', async () => {
      const client = await connect('/echo');
      const first = client.receiveText();
      const second = client.receiveText();
      client.send('1');
      client.send('2');
      await expect(Promise.all([first, second])).resolves.toEqual(['1', '2']);
    });

    it('joins fragmented messages, with a ping between fragments', async () => {
      const client = await connect('/fragments');
      expect(await client.receiveText()).toBe('hello wörld');
      expect(await client.receiveBinary()).toEqual(Buffer.from([1, 2, 3]));
      expect(await client.receiveText()).toBe('after');
      expect(client.pingsReceived).toBe(1);
    });

    it('sends frames as given, fragments included', async () => {
      const client = await connect('/echo');
      client.sendFrame(new Frame.Text(false, 'frag'));
      client.sendFrame(new Frame.Text(true, 'ments'));
      expect(await client.receiveText()).toBe('fragments');
    });

    it('times out a receive with a clear error, and the client still works after it', async () => {
      const client = await connect('/echo');
      const started = Date.now();
      const error = await client.receiveText(100).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WebSocketReceiveError);
      expect((error as Error).message).toBe('receiveText() timed out after 100 ms: nothing arrived');
      expect(Date.now() - started).toBeLessThan(2_000);
      client.send('after the timeout');
      expect(await client.receiveText()).toBe('after the timeout');
    });

    it('uses the timeout option as the default receive timeout', async () => {
      const client = await connect('/echo', { timeout: 150 });
      await expect(client.receive()).rejects.toThrow('receive() timed out after 150 ms');
    });

    it('rejects a receive of the wrong kind, saying what came, and leaves that message queued', async () => {
      const client = await connect('/echo');
      client.send(Buffer.from([9, 9, 9]));
      client.send('not json');
      await expect(client.receiveText()).rejects.toThrow('receiveText() expected a Text message, got a Binary message of 3 bytes');
      expect(await client.receiveBinary()).toEqual(Buffer.from([9, 9, 9]));
      await expect(client.receiveBinary()).rejects.toThrow('receiveBinary() expected a Binary message, got a Text message "not json"');
      await expect(client.receiveJson()).rejects.toThrow(/receiveJson\(\) got a Text message "not json", which is not JSON/);
      expect(await client.receiveText()).toBe('not json');
    });

    it('answers the server pings, so a session with a short ping timeout stays open', async () => {
      const client = await connect('/pinged');
      // Pings every 50 ms, 200 ms to answer each: unanswered, the server closes with 1011 within 250 ms.
      await sleep(700);
      client.send('still open');
      expect(await client.receiveText()).toBe('still open');
      expect(client.pingsReceived).toBeGreaterThanOrEqual(4);
      await client.close();
    });
  });

  describe('closing', () => {
    it("receives the server's messages, then its Close with code and reason, and answers it", async () => {
      const client = await connect('/bye?id=bye');
      expect(await client.receiveText()).toBe('one');
      expect(await client.receiveText()).toBe('two');
      expect(await client.receiveBinary()).toEqual(Buffer.from([1, 2, 3]));
      expect(await client.receiveClose()).toEqual({ code: 4000, reason: 'bye' });
      // The client echoed the code at once, without being asked.
      expect(await within(recordedFor('bye').promise, 2_000, 'the close answer')).toEqual(new CloseReason(4000));
      await expect(client.receive()).rejects.toThrow('receive() found no message: the server closed the connection (Close 4000 "bye")');
      expect(() => client.send('late')).toThrow(/Cannot send: the server closed the connection/);
      expect(await client.close()).toEqual({ code: 4000, reason: 'bye' });
    });

    it('receiveClose rejects while messages are unread, naming the first', async () => {
      const client = await connect('/bye?id=unread');
      await expect(client.receiveClose()).rejects.toThrow(/receiveClose\(\) expected the server's Close, got a Text message "one"/);
      expect(await client.receiveText()).toBe('one');
    });

    it('close() runs the close handshake and resolves with the server Close once TCP ended', async () => {
      const client = await connect('/record?id=close');
      expect(await client.receiveText()).toBe('ready');
      // The route's session echoes the code (and here the reason) of the client's Close.
      expect(await client.close(4100, 'done')).toMatchObject({ code: 4100 });
      const seen = await within(recordedFor('close').promise, 2_000, 'the session to end');
      expect(seen).toEqual(new CloseReason(4100, 'done'));
      expect(() => client.send('late')).toThrow('Cannot send');
      await expect(client.receive()).rejects.toThrow(/found no message: the server closed the connection \(Close 4100\b/);
    });

    it('terminate() drops the connection without a Close', async () => {
      const client = await connect('/record?id=terminate');
      expect(await client.receiveText()).toBe('ready');
      const pending = client.receive();
      client.terminate();
      await expect(pending).rejects.toThrow('receive() found no message: the client called terminate()');
      const seen = await within(recordedFor('terminate').promise, 2_000, 'the session to end');
      expect(seen?.code).toBe(1006);
      await expect(client.receiveClose()).rejects.toThrow('receiveClose() found no Close frame: the client called terminate()');
    });

    it('answers the Close the app sends when it shuts down', async () => {
      const closing = await createApp();
      const client = await connectWebSocket(closing, '/echo');
      const receiving = client.receiveClose();
      await within(closing.close(), 5_000, 'app.close()');
      expect(await receiving).toEqual({ code: 1001, reason: expect.any(String) });
      await expect(client.close()).resolves.toEqual({ code: 1001, reason: expect.any(String) });
    });
  });
});
