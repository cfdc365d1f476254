/**
 * The module's routes beside other WebSocket servers on the same HTTP server
 * and port: a `@nestjs/websockets` gateway on `@nestjs/platform-ws`, and a
 * plain `ws` WebSocketServer attached after listen or before init. Each keeps
 * its own paths, at the same time, and unknown paths are refused by whichever
 * listener without disturbing either.
 */
import 'reflect-metadata';
import type { Server } from 'node:http';
import { Controller, Injectable, type INestApplication, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { WebSocketServer } from 'ws';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { RawClient } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();

@Controller()
class EchoController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(`route:${frame.readText()}`);
  }

  @WebSocketRoute('rooms/:room')
  async room(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(`${session.call.params.room}:${frame.readText()}`);
  }
}

@WebSocketGateway({ path: '/gateway' })
class EchoGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: string) {
    return { event: 'echo', data: `gateway:${data}` };
  }
}

/** A `ws` server on its own path of Nest's HTTP server, echoing with a `plain:` prefix. */
function plainServer(server: Server): WebSocketServer {
  const wss = new WebSocketServer({ server, path: '/plain' });
  wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`plain:${String(data)}`)));
  return wss;
}

/** Closes a ws server and drops its clients (ws 8 leaves them open on close()). */
async function closePlain(wss: WebSocketServer | undefined): Promise<void> {
  if (wss === undefined) return;
  for (const client of wss.clients) client.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
}

/** What a user does to have a ws server before the app starts: attach it to Nest's HTTP server in onModuleInit. */
@Injectable()
class PlainServerBeforeInit implements OnModuleInit, OnApplicationShutdown {
  wss: WebSocketServer | undefined;

  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit() {
    this.wss = plainServer(this.adapterHost.httpAdapter.getHttpServer() as Server);
  }

  async onApplicationShutdown() {
    await closePlain(this.wss);
    this.wss = undefined;
  }
}

async function connect(t: TestApp, path: string): Promise<WsClient> {
  return clients.track(await WsClient.connect(t.url(path)));
}

async function roundTrip(client: WsClient, message: string): Promise<string> {
  client.ws.send(message);
  return client.nextText();
}

async function gatewayEcho(client: WsClient, data: string): Promise<unknown> {
  return JSON.parse(await roundTrip(client, JSON.stringify({ event: 'echo', data })));
}

/** The status of a refused upgrade on `path`, or 'dropped' when the connection was ended without an answer. */
async function refusal(t: TestApp, path: string): Promise<number | 'dropped'> {
  let opened: { client: RawClient; response: { status: number } };
  try {
    opened = await RawClient.open(t.port, path);
  } catch {
    return 'dropped';
  }
  clients.track(opened.client);
  expect(opened.response.status).not.toBe(101);
  return opened.response.status;
}

describe.each(PLATFORMS)('a @nestjs/websockets gateway (platform-ws) beside the routes (%s)', (platform) => {
  let t: TestApp;
  beforeAll(
    async () =>
      (t = await startApp([EchoController], {}, [EchoGateway], {
        platform,
        configure: (app: INestApplication) => app.useWebSocketAdapter(new WsAdapter(app)),
      })),
  );
  afterAll(() => t.close());
  afterEach(() => clients.dropAll());

  it('answers the gateway’s event and the route’s echo on the same port, both open at once', async () => {
    const gateway = await connect(t, '/gateway');
    const route = await connect(t, '/echo');
    const room = await connect(t, '/rooms/blue');
    expect(await gatewayEcho(gateway, 'x')).toEqual({ event: 'echo', data: 'gateway:x' });
    expect(await roundTrip(route, 'y')).toBe('route:y');
    expect(await roundTrip(room, 'z')).toBe('blue:z');
    // Interleaved, still both.
    expect(await gatewayEcho(gateway, 'again')).toEqual({ event: 'echo', data: 'gateway:again' });
    expect(await roundTrip(route, 'again')).toBe('route:again');
  });

  it('refuses an unknown path without disturbing either', async () => {
    const gateway = await connect(t, '/gateway');
    const route = await connect(t, '/echo');
    // platform-ws destroys upgrades to paths no gateway has; the routes leave them to it (no 404 written first).
    expect(await refusal(t, '/nowhere')).toBe('dropped');
    await expect(WsClient.connect(t.url('/nowhere'))).rejects.toThrow();
    expect(await gatewayEcho(gateway, 'still')).toEqual({ event: 'echo', data: 'gateway:still' });
    expect(await roundTrip(route, 'still')).toBe('route:still');
    // And new connections to both still work.
    expect(await gatewayEcho(await connect(t, '/gateway'), 'new')).toEqual({ event: 'echo', data: 'gateway:new' });
    expect(await roundTrip(await connect(t, '/echo'), 'new')).toBe('route:new');
  });
});

describe.each(PLATFORMS)('a plain ws WebSocketServer on its own path beside the routes (%s)', (platform) => {
  describe('attached after listen', () => {
    let t: TestApp;
    let wss: WebSocketServer | undefined;
    beforeAll(async () => (t = await startApp([EchoController], {}, [], { platform })));
    afterAll(() => t.close());
    afterEach(async () => {
      clients.dropAll();
      await closePlain(wss);
      wss = undefined;
    });

    it('serves /plain and the routes at the same time', async () => {
      wss = plainServer(t.app.getHttpServer() as Server);
      const plain = await connect(t, '/plain');
      const route = await connect(t, '/echo');
      const room = await connect(t, '/rooms/red');
      expect(await roundTrip(plain, 'a')).toBe('plain:a');
      expect(await roundTrip(route, 'b')).toBe('route:b');
      expect(await roundTrip(room, 'c')).toBe('red:c');
      expect(await roundTrip(plain, 'd')).toBe('plain:d');
    });

    it('leaves an unknown path to the ws server, which refuses it, and both keep working', async () => {
      wss = plainServer(t.app.getHttpServer() as Server);
      const plain = await connect(t, '/plain');
      const route = await connect(t, '/echo');
      // ws answers 400 to every path not its own: proof that the route did not take it (its answer is 404).
      expect(await refusal(t, '/nowhere')).toBe(400);
      expect(await roundTrip(plain, 'e')).toBe('plain:e');
      expect(await roundTrip(route, 'f')).toBe('route:f');
    });

    it('keeps the routes once the ws server is gone, and answers 404 for unknown paths again', async () => {
      wss = plainServer(t.app.getHttpServer() as Server);
      await closePlain(wss);
      wss = undefined;
      expect(await roundTrip(await connect(t, '/echo'), 'g')).toBe('route:g');
      expect(await refusal(t, '/plain')).toBe(404);
    });
  });

  describe('attached before init (onModuleInit of a provider)', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([EchoController], {}, [PlainServerBeforeInit], { platform })));
    afterAll(() => t.close());
    afterEach(() => clients.dropAll());

    it('serves /plain and the routes at the same time', async () => {
      expect(t.app.get(PlainServerBeforeInit).wss).toBeDefined();
      const plain = await connect(t, '/plain');
      const route = await connect(t, '/echo');
      const room = await connect(t, '/rooms/green');
      expect(await roundTrip(plain, 'a')).toBe('plain:a');
      expect(await roundTrip(route, 'b')).toBe('route:b');
      expect(await roundTrip(room, 'c')).toBe('green:c');
      expect(await refusal(t, '/nowhere')).toBe(400);
      expect(await roundTrip(plain, 'd')).toBe('plain:d');
      expect(await roundTrip(route, 'e')).toBe('route:e');
    });
  });
});
