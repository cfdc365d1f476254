import 'reflect-metadata';
import {
  Catch,
  Controller,
  Get,
  Injectable,
  UseFilters,
  type ArgumentsHost,
  type CallHandler,
  type ExceptionFilter,
  type ExecutionContext,
  type NestInterceptor,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { CloseReason, isWebSocketRoute, WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { WsClient } from '../support/ws-client.js';

const seen: Array<{ where: string; type: string; webSocket: boolean }> = [];

@Injectable()
class RecordingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    seen.push({ where: 'interceptor', type: context.getType(), webSocket: isWebSocketRoute(context) });
    return next.handle();
  }
}

@Catch()
class RecordingFilter implements ExceptionFilter {
  catch(_error: unknown, host: ArgumentsHost) {
    seen.push({ where: 'filter', type: host.getType(), webSocket: isWebSocketRoute(host) });
    return new CloseReason(4000, 'seen');
  }
}

@Controller()
class MixedController {
  @Get('http')
  http() {
    return 'plain';
  }

  @WebSocketRoute('ws')
  @UseFilters(RecordingFilter)
  async ws(session: DefaultWebSocketServerSession) {
    await session.send('hello');
    throw new Error('to the filter');
  }
}

describe.each(PLATFORMS)('isWebSocketRoute on %s', (platform) => {
  let t: TestApp;
  const clients = new ClientTracker();
  beforeAll(async () => {
    t = await startApp([MixedController], {}, [{ provide: APP_INTERCEPTOR, useClass: RecordingInterceptor }], { platform });
  });
  afterEach(() => {
    clients.dropAll();
    seen.length = 0;
  });
  afterAll(() => t.close());

  it('is false for an HTTP route, though the context type is the same', async () => {
    const response = await fetch(t.httpUrl('/http'));
    expect(await response.text()).toBe('plain');
    expect(seen).toEqual([{ where: 'interceptor', type: 'http', webSocket: false }]);
  });

  it('is true for a WebSocket route, before the 101 and in a filter after it', async () => {
    const client = clients.track(await WsClient.connect(t.url('/ws')));
    expect(await client.nextText()).toBe('hello');
    expect((await client.waitClosed()).code).toBe(4000);
    expect(seen).toEqual([
      { where: 'interceptor', type: 'http', webSocket: true },
      { where: 'filter', type: 'ws', webSocket: true },
    ]);
  });
});
