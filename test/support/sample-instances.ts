/**
 * Instances of the sample app (its real AppModule) in this process, on loopback ports, sharing one real
 * redis-server through REDIS_URL as `REDIS_URL=… PORT=… npm start` does; or without it, one as `npm start` alone.
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { Test } from '@nestjs/testing';
import { WebSocketSessions } from 'nest-websocket-routes';
import { AppModule } from '../../sample/app.module.js';

export interface SampleInstance {
  app: INestApplication;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  sessions: WebSocketSessions;
}

/** Starts one instance, on the Redis at `redisUrl` when given (REDIS_URL is set only while its module starts). */
export async function startSample(redisUrl?: string): Promise<SampleInstance> {
  const previous = process.env.REDIS_URL;
  if (redisUrl === undefined) delete process.env.REDIS_URL;
  else process.env.REDIS_URL = redisUrl;
  try {
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    return { app, baseUrl: `http://127.0.0.1:${port}`, sessions: app.get(WebSocketSessions) };
  } finally {
    if (previous === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = previous;
  }
}
