/**
 * The `gateway` echo server: a `@nestjs/websockets` gateway on `@nestjs/platform-ws`'s WsAdapter, made to
 * echo the same bytes and frame types as the others (what that changes is said in echo.bench.ts).
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import type { WebSocket } from 'ws';
import { listenOnLoopback, type RunningServer } from './listen.js';

/**
 * A gateway on `path` that sends the message back itself rather than returning it: WsAdapter sends a
 * handler's return value as JSON.stringify(value) in a text frame, which would put a string in quotes
 * and turn a Buffer into {"type":"Buffer","data":[...]}.
 */
function echoGateway(path: string, perMessageDeflate: boolean) {
  @WebSocketGateway({ path, perMessageDeflate })
  class EchoGateway {
    @SubscribeMessage('echo')
    echo(client: WebSocket, data: string | Buffer): void {
      client.send(data);
    }
  }
  return EchoGateway;
}

@Module({ providers: [echoGateway('/gateway', false), echoGateway('/gateway-deflate', true)] })
class GatewayModule {}

export async function start(): Promise<RunningServer> {
  const app = await NestFactory.create(GatewayModule, { logger: false });
  // The default parser JSON.parses `{ event, data }`; this one routes every message, as it came, to `echo`:
  // text arrives as a string and binary as a Buffer (ws's MessageEvent), and client.send() keeps that type.
  app.useWebSocketAdapter(new WsAdapter(app, { messageParser: (data) => ({ event: 'echo', data }) }));
  return listenOnLoopback(app, '/gateway', '/gateway-deflate');
}
