/**
 * The `ours` echo server: this library through the full Nest stack, a decorated controller method on
 * `/echo`, and the same loop on `/echo-deflate` with `deflate: true`. The module runs with its defaults,
 * as `ws` and the gateway run with theirs (no pings, no timeouts).
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WebSocketRoute, WebSocketsModule, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { echoFrames } from './echo-frames.js';
import { listenOnLoopback, type RunningServer } from './listen.js';

@Controller()
class EchoController {
  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('echo-deflate', { deflate: true })
  echoDeflate(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }
}

@Module({ imports: [WebSocketsModule.forRoot()], controllers: [EchoController] })
class BenchModule {}

export async function start(): Promise<RunningServer> {
  return listenOnLoopback(await NestFactory.create(BenchModule, { logger: false }), '/echo', '/echo-deflate');
}
