/**
 * The `cluster-ours` fan-out server of the cluster benchmark (cluster.bench.ts): this library through the full
 * Nest stack, on `/fanout?topic=T&role=sub|pub`. A subscriber subscribes to T and hears `subscribed`; whatever
 * a client sends is published to T, leaving the sender out. With a Redis URL the module gets a RedisBroker (one
 * of three instances of the application); without one, the default in-process broker (the in-process scenario).
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WebSocketRoute, WebSocketSessions, WebSocketsModule, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { RedisBroker } from 'nest-websocket-routes/redis';
import { listenOnLoopback, type RunningServer } from './listen.js';

@Controller()
class FanoutController {
  constructor(private readonly sessions: WebSocketSessions) {}

  @WebSocketRoute('fanout')
  async fanout(session: DefaultWebSocketServerSession): Promise<void> {
    const { topic, role } = session.call.query as Record<string, string>;
    if (role === 'sub') {
      await session.subscribe(topic);
      await session.send('subscribed');
    }
    // The frame as it came: publish takes a whole Text frame without decoding its UTF-8.
    for await (const frame of session.incoming) await this.sessions.publish(topic, frame, { except: session });
  }
}

/** `redisUrl`: the Redis all instances share; absent, the in-process broker. */
export async function start(redisUrl?: string): Promise<RunningServer> {
  const broker = redisUrl === undefined ? undefined : new RedisBroker({ url: redisUrl, prefix: 'bench' });
  @Module({ imports: [WebSocketsModule.forRoot(broker === undefined ? {} : { broker })], controllers: [FanoutController] })
  class FanoutModule {}
  return listenOnLoopback(await NestFactory.create(FanoutModule, { logger: ['error'] }), '/fanout', '/fanout');
}
