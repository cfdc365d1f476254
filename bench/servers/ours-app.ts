/**
 * The `ours-app` server: this library in an application shaped like a real one rather than the one-route
 * `ours`: 12 WebSocket routes on 4 controllers (static paths and paths with parameters, one with a
 * subprotocol, one raw), 2 plain HTTP routes, and a guard on one controller that checks a token in the
 * query. The handshake-app scenario connects to that controller's echo route with the token, so every
 * handshake goes through the router's 12 routes and the guard. The module runs with its defaults, as `ours`.
 */
import 'reflect-metadata';
import { Controller, Get, Injectable, Module, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  WebSocketRoute,
  WebSocketsModule,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { echoFrames } from './echo-frames.js';
import { listenOnLoopback, type RunningServer } from './listen.js';

/** What the bench client puts in the query of the guarded route; the guard refuses anything else. */
const BENCH_TOKEN = 'bench-token';

@Injectable()
class TokenGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const { query } = context.switchToHttp().getRequest<{ query: Record<string, unknown> }>();
    return query.token === BENCH_TOKEN;
  }
}

@Controller('chat')
class ChatController {
  @Get('rooms')
  rooms(): string[] {
    return ['lobby'];
  }

  @WebSocketRoute('lobby')
  lobby(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('rooms/:room')
  room(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('rooms/:room/typing')
  typing(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }
}

@Controller('notifications')
class NotificationsController {
  @WebSocketRoute('live')
  live(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('users/:userId')
  user(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('users/:userId', { protocol: 'notifications.v2' })
  userV2(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }
}

@Controller('metrics')
class MetricsController {
  @WebSocketRoute('stream')
  stream(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('stream/:series')
  series(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('echo-deflate', { deflate: true })
  echoDeflate(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }
}

@Controller('secure')
@UseGuards(TokenGuard)
class SecureController {
  @Get('status')
  status(): { ok: boolean } {
    return { ok: true };
  }

  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('feeds/:feed')
  feed(session: DefaultWebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }

  @WebSocketRoute('raw', { raw: true })
  raw(session: WebSocketServerSession): Promise<void> {
    return echoFrames(session);
  }
}

@Module({
  imports: [WebSocketsModule.forRoot()],
  controllers: [ChatController, NotificationsController, MetricsController, SecureController],
  providers: [TokenGuard],
})
class BenchAppModule {}

export async function start(): Promise<RunningServer> {
  const app = await NestFactory.create(BenchAppModule, { logger: false });
  return listenOnLoopback(app, `/secure/echo?token=${BENCH_TOKEN}`, '/metrics/echo-deflate');
}
