/**
 * The `ours` echo server: this library through the full Nest stack, the sample AppModule's `/echo`
 * default-session route, and the same loop on `/echo-deflate` with `deflate: true`.
 */
import 'reflect-metadata';
import { Controller, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { AppModule } from '../../sample/app.module.js';
import { listenOnLoopback, type RunningServer } from './listen.js';

@Controller()
class DeflateEchoController {
  @WebSocketRoute('echo-deflate', { deflate: true })
  async echo(session: DefaultWebSocketServerSession): Promise<void> {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

@Module({ imports: [AppModule], controllers: [DeflateEchoController] })
class BenchModule {}

export async function start(): Promise<RunningServer> {
  return listenOnLoopback(await NestFactory.create(BenchModule, { logger: false }), '/echo', '/echo-deflate');
}
