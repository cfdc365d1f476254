/** Starts a real Nest application on a free loopback port for e2e tests. */
import type { INestApplication, Type } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { Test } from '@nestjs/testing';
import { WebSocketsModule, type WebSocketsModuleOptions } from 'nest-websocket-routes';

export interface TestApp {
  app: INestApplication;
  port: number;
  /** `ws://127.0.0.1:port` + path */
  url(path: string): string;
  close(): Promise<void>;
}

export async function startApp(
  controllers: Type[],
  options: WebSocketsModuleOptions = {},
  providers: Type[] = [],
): Promise<TestApp> {
  const moduleRef = await Test.createTestingModule({
    imports: [WebSocketsModule.forRoot(options)],
    controllers,
    providers,
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  return {
    app,
    port,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    close: () => app.close(),
  };
}
