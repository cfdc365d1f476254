import 'reflect-metadata';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { Controller, Injectable, Module, type DynamicModule, type INestApplication, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import WebSocket from 'ws';
import {
  WebSocketRoute,
  WebSocketsModule,
  WebSocketUpgrade,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
  type WebSocketsModuleOptions,
} from 'nest-websocket-routes';
import { RawClient } from '../support/raw-client.js';
import { deferred, within } from '../support/async.js';

@Injectable()
class Settings {
  readonly maxFrameSize = 100;
}

@Module({ providers: [Settings], exports: [Settings] })
class SettingsModule {}

@Injectable()
class Greeter {
  greet(name: string): string {
    return `hello ${name}`;
  }
}

@Controller()
class LimitsController {
  @WebSocketRoute('module-limit')
  async moduleLimit(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('route-limit', { maxFrameSize: 10 })
  async routeLimit(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('app')
  async app(session: DefaultWebSocketServerSession) {
    await session.send(session.application.get(Greeter).greet(session.call.query.name as string));
  }
}

async function createApp(imports: DynamicModule[], controllers: Type[]): Promise<INestApplication> {
  const moduleRef = await Test.createTestingModule({ imports, controllers, providers: [Greeter] }).compile();
  return moduleRef.createNestApplication({ logger: false });
}

async function listen(app: INestApplication): Promise<number> {
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as AddressInfo).port;
}

async function closeCodeFor(port: number, path: string, size: number): Promise<number> {
  const client = await RawClient.connect(port, path);
  client.send({ opcode: 0x2, payload: Buffer.alloc(size, 7) });
  const first = await client.readFrame();
  client.destroy();
  if (first === null) throw new Error('connection ended without a frame');
  return first.opcode === 0x8 ? first.payload.readUInt16BE(0) : 0;
}

describe('WebSocketsModule options', () => {
  it('forRootAsync takes options from an injected provider, and a route overrides them', async () => {
    const app = await createApp(
      [
        WebSocketsModule.forRootAsync({
          imports: [SettingsModule],
          inject: [Settings],
          useFactory: (settings: Settings): WebSocketsModuleOptions => ({ maxFrameSize: settings.maxFrameSize }),
        }),
      ],
      [LimitsController],
    );
    const port = await listen(app);
    try {
      // 0 stands for "an echo came back, not a Close".
      expect(await closeCodeFor(port, '/module-limit', 100)).toBe(0);
      expect(await closeCodeFor(port, '/module-limit', 101)).toBe(1009);
      expect(await closeCodeFor(port, '/route-limit', 10)).toBe(0);
      expect(await closeCodeFor(port, '/route-limit', 11)).toBe(1009);
    } finally {
      await app.close();
    }
  });

  it('gives the session the application context', async () => {
    const app = await createApp([WebSocketsModule.forRoot()], [LimitsController]);
    const port = await listen(app);
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/app?name=ktor`);
      const [message] = await once(ws, 'message');
      expect(message.toString()).toBe('hello ktor');
      ws.close();
      await once(ws, 'close');
    } finally {
      await app.close();
    }
  });

  it.each([
    [{ maxFrameSize: 0 }, 'maxFrameSize'],
    [{ pingInterval: -1 }, 'pingInterval'],
    [{ timeout: 1.5 }, 'timeout'],
    [{ closeTimeout: 'soon' as unknown as number }, 'closeTimeout'],
    [{ shutdownTimeout: -5 }, 'shutdownTimeout'],
    [{ pingInterval: 2 ** 31 }, 'pingInterval'],
    [{ timeout: 0 }, 'timeout'],
  ])('fails at startup on invalid options %j, naming the option', async (options, name) => {
    const build = async () => (await createApp([WebSocketsModule.forRoot(options)], [LimitsController])).init();
    await expect(build()).rejects.toThrow(`"${name}"`);
  });
});

describe('WebSocketUpgrade', () => {
  @Controller()
  class NoRoutes {}

  it('accepts an upgrade in a listener of your own and starts a raw session', async () => {
    const app = await createApp([WebSocketsModule.forRoot()], [NoRoutes]);
    const seen: string[] = [];
    const upgrade = new WebSocketUpgrade(
      { protocol: 'v1', application: app },
      async (session: WebSocketServerSession) => {
        const frame = await session.incoming.receive();
        seen.push(frame.frameType.name);
        await session.send(session.application.get(Greeter).greet(session.call.protocol ?? '?'));
      },
    );
    app.getHttpServer().on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (request.url === '/mine') void upgrade.handle(request, socket, head);
    });
    const port = await listen(app);
    try {
      const refused = await RawClient.open(port, '/mine');
      expect(refused.response.status).toBe(400);
      refused.client.destroy();

      const client = await RawClient.connect(port, '/mine', { 'Sec-WebSocket-Protocol': 'v1' });
      client.send({ opcode: 0x9, payload: 'ping' });
      const reply = await client.readFrame();
      expect(reply?.opcode).toBe(0x1);
      expect(reply?.payload.toString()).toBe('hello v1');
      // Raw: the handler saw the ping itself, and returning ended TCP with no Close frame.
      expect(await client.readFrame()).toBeNull();
      expect(seen).toEqual(['PING']);
    } finally {
      await app.close();
    }
  });
});

describe('WebSocketUpgrade on a socket whose client already left', () => {
  it('resolves handle() without running the handler', async () => {
    const app = await createApp([WebSocketsModule.forRoot()], []);
    let handlerRan = false;
    const upgrade = new WebSocketUpgrade({}, async () => {
      handlerRan = true;
    });
    const upgraded = deferred();
    const handled = deferred<Promise<void>>();
    app.getHttpServer().on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (request.url !== '/late') return;
      // As a listener that checks credentials asynchronously would: the client leaves meanwhile.
      socket.once('end', () => handled.resolve(upgrade.handle(request, socket, head)));
      upgraded.resolve();
    });
    const port = await listen(app);
    try {
      const client = connect(port, '127.0.0.1');
      client.write(
        'GET /late HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      await within(upgraded.promise, 5000, 'the upgrade event');
      client.destroy();
      await within(handled.promise, 5000, 'handle() on a socket whose client left');
      expect(handlerRan).toBe(false);
    } finally {
      await app.close();
    }
  });
});
