/**
 * `nest-websocket-routes/redis` as users get it: the packed library and `redis` installed into a fresh app,
 * the app compiled strict (NodeNext) against the installed types, and two processes of it on one real
 * redis-server: what a client on one publishes reaches a client on the other.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './support/app-server.js';
import { createFreshApp, packedAppDependencies, REPO_ROOT, repoVersion, STRICT_NODENEXT_TSCONFIG, type FreshApp } from './support/packed-package.js';
import { RedisServer } from '../support/redis-server.js';
import { WsClient } from '../support/ws-client.js';

const MAIN = `
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { WebSocketRoute, WebSocketSessions, WebSocketsModule, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { RedisBroker, type RedisBrokerOptions } from 'nest-websocket-routes/redis';

@Controller()
class RoomController {
  constructor(private readonly sessions: WebSocketSessions) {}

  @WebSocketRoute('room')
  async room(session: DefaultWebSocketServerSession): Promise<void> {
    await session.subscribe('room');
    await session.send('subscribed');
    for await (const frame of session.incoming) await this.sessions.publish('room', frame.readText(), { except: session });
  }
}

const options: RedisBrokerOptions = { url: process.env.REDIS_URL };

@Module({ imports: [WebSocketsModule.forRoot({ broker: new RedisBroker(options) })], controllers: [RoomController] })
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
console.log(\`listening on \${(app.getHttpServer().address() as AddressInfo).port}\`);
`;

describe('nest-websocket-routes/redis in a fresh app', () => {
  let app: FreshApp;
  let redis: RedisServer;

  beforeAll(async () => {
    app = await createFreshApp({
      name: 'nest-websocket-routes-redis-consumer',
      dependencies: await packedAppDependencies({ redis: repoVersion('redis') }),
      devDependencies: { '@types/node': repoVersion('@types/node') },
    });
    await app.writeFile('tsconfig.json', JSON.stringify(STRICT_NODENEXT_TSCONFIG, null, 2));
    await app.writeFile('src/main.ts', MAIN);
    redis = await RedisServer.start();
  });

  afterAll(async () => {
    await app?.remove();
    await redis?.remove();
  });

  it("compiles against the installed package's and redis's types (strict, NodeNext, skipLibCheck off)", async () => {
    await app.run(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    expect(existsSync(join(app.dir, 'dist', 'main.js'))).toBe(true);
  });

  it('carries a message from a client of one process to a client of another, through Redis', async () => {
    const servers = await Promise.all([0, 1].map(() => startServer(app, 'dist/main.js', { REDIS_URL: redis.url })));
    try {
      const [here, there] = await Promise.all(servers.map(({ port }) => WsClient.connect(`ws://127.0.0.1:${port}/room`)));
      for (const client of [here, there]) expect((await client.next()).data.toString()).toBe('subscribed');
      here.ws.send('across processes');
      expect((await there.next()).data.toString()).toBe('across processes');
      here.ws.close(1000);
      there.ws.close(1000);
    } finally {
      for (const { server } of servers) server.kill();
    }
  });
});
