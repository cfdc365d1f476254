/** Starts a real Nest application on a free loopback port for e2e tests, on Express or Fastify. */
import type { DynamicModule, INestApplication, Provider, Type } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { WebSocketsModule, type WebSocketsModuleOptions } from 'nest-websocket-routes';

export type Platform = 'express' | 'fastify';
/** Both HTTP platforms, for `describe.each(PLATFORMS)`. */
export const PLATFORMS: Platform[] = ['express', 'fastify'];

export interface TestApp {
  app: INestApplication;
  port: number;
  /** `ws://127.0.0.1:port` + path */
  url(path: string): string;
  /** `http://127.0.0.1:port` + path */
  httpUrl(path: string): string;
  close(): Promise<void>;
}

export interface StartOptions {
  platform?: Platform;
  /** Modules to import instead of `WebSocketsModule.forRoot(options)`. */
  imports?: Array<Type | DynamicModule>;
  /** Runs on the app before it listens: global prefix, versioning, global enhancers. */
  configure?: (app: INestApplication) => void;
  /** Keep Nest's logger (e.g. to spy on it); off by default. */
  logger?: boolean;
}

export async function startApp(
  controllers: Type[],
  options: WebSocketsModuleOptions = {},
  providers: Provider[] = [],
  start: StartOptions = {},
): Promise<TestApp> {
  const moduleRef = await Test.createTestingModule({
    imports: start.imports ?? [WebSocketsModule.forRoot(options)],
    controllers,
    providers,
  }).compile();
  const logger = start.logger === true ? undefined : (false as const);
  const app =
    start.platform === 'fastify'
      ? moduleRef.createNestApplication(new FastifyAdapter(), { logger })
      : moduleRef.createNestApplication({ logger });
  start.configure?.(app);
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  return {
    app,
    port,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    httpUrl: (path) => `http://127.0.0.1:${port}${path}`,
    close: () => app.close(),
  };
}

/** Builds and initializes an app without listening, then closes it: for what must fail (or pass) at startup. */
export async function initApp(controllers: Type[], imports: Array<Type | DynamicModule> = [WebSocketsModule.forRoot()]): Promise<void> {
  const moduleRef = await Test.createTestingModule({ imports, controllers }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  try {
    await app.init();
  } finally {
    await app.close().catch(() => undefined);
  }
}
