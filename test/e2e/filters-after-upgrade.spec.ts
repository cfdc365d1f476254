/**
 * Exception filters written for HTTP only, on WebSocket routes after the 101:
 * Nest's documented global HttpExceptionFilter (verbatim), a filter whose
 * promise rejects and one whose observable errors. The close codes stay the
 * documented defaults, and each failing filter is named in one warning,
 * however many sessions it fails on.
 */
import 'reflect-metadata';
import {
  ArgumentsHost,
  Catch,
  Controller,
  ExceptionFilter,
  ForbiddenException,
  HttpException,
  ServiceUnavailableException,
  UseFilters,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { of, throwError, type Observable } from 'rxjs';
import {
  CloseReason,
  WebSocketCloseException,
  WebSocketRoute,
  type DefaultWebSocketServerSession,
} from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type Platform, type TestApp } from '../support/nest-app.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { WsClient } from '../support/ws-client.js';

// From Nest's documentation (docs.nestjs.com/exception-filters), unchanged.
@Catch(HttpException)
export class HttpExceptionFilter implements ExceptionFilter {
  catch(exception: HttpException, host: ArgumentsHost) {
    const ctx = host.switchToHttp();
    const response = ctx.getResponse<Response>();
    const request = ctx.getRequest<Request>();
    const status = exception.getStatus();

    response
      .status(status)
      .json({
        statusCode: status,
        timestamp: new Date().toISOString(),
        path: request.url,
      });
  }
}

/** The filter as the README shows it: checks the context before switchToHttp(). */
@Catch(HttpException)
class BothContextsFilter implements ExceptionFilter {
  catch(exception: HttpException, host: ArgumentsHost): CloseReason | void {
    const status = exception.getStatus();
    if (host.getType() === 'ws') {
      // A WebSocket route after the 101: no HTTP response any more, the session closes with this.
      return new CloseReason(status < 500 ? 1008 : 1011, exception.message);
    }
    const ctx = host.switchToHttp();
    const response = ctx.getResponse<Response>();
    const request = ctx.getRequest<Request>();
    response.status(status).json({
      statusCode: status,
      timestamp: new Date().toISOString(),
      path: request.url,
    });
  }
}

/** The same mistake, async: its promise rejects. */
@Catch(HttpException)
class AsyncHttpFilter implements ExceptionFilter {
  async catch(exception: HttpException, host: ArgumentsHost) {
    await Promise.resolve();
    host.switchToHttp().getResponse<Response>().status(exception.getStatus()).json({ statusCode: exception.getStatus() });
  }
}

/** Written for microservices: answers with an observable that errors. */
@Catch()
class RpcStyleFilter implements ExceptionFilter {
  catch(): Observable<never> {
    return throwError(() => new Error('this filter only knows RPC'));
  }
}

/** A filter for WebSocket routes that answers with an observable: what it emits is the close. */
@Catch()
class ObservableCloseFilter implements ExceptionFilter {
  catch(): Observable<CloseReason> {
    return of(new CloseReason(4005, 'from an observable'));
  }
}

async function failAfterStart(session: DefaultWebSocketServerSession, error: Error): Promise<never> {
  await session.send('started');
  throw error;
}

@Controller()
class MembersController {
  @WebSocketRoute('members')
  members(session: DefaultWebSocketServerSession) {
    return failAfterStart(session, new ForbiddenException('members only'));
  }

  @WebSocketRoute('both-contexts')
  @UseFilters(BothContextsFilter)
  bothContexts(session: DefaultWebSocketServerSession) {
    return failAfterStart(session, new ServiceUnavailableException('come back later'));
  }

  @WebSocketRoute('async-filtered')
  @UseFilters(AsyncHttpFilter)
  asyncFiltered(session: DefaultWebSocketServerSession) {
    return failAfterStart(session, new ForbiddenException('async filter'));
  }

  @WebSocketRoute('rpc-filtered')
  @UseFilters(RpcStyleFilter)
  rpcFiltered(session: DefaultWebSocketServerSession) {
    return failAfterStart(session, new WebSocketCloseException(4001, 'own code'));
  }

  @WebSocketRoute('own-code')
  ownCode(session: DefaultWebSocketServerSession) {
    return failAfterStart(session, new WebSocketCloseException(4001, 'deliberate'));
  }

  @WebSocketRoute('observable-close')
  @UseFilters(ObservableCloseFilter)
  observableClose(session: DefaultWebSocketServerSession) {
    return failAfterStart(session, new Error('closed by the filter'));
  }
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

/** Every app of this file logs here: Nest's Logger override is process-wide. */
const logger = new RecordingLogger();

describe.each(PLATFORMS)('on %s', (platform: Platform) => {
  let t: TestApp;
  beforeAll(
    async () =>
      (t = await startApp([MembersController], {}, [], {
        platform,
        logger: true,
        configure: (app) => {
          app.useLogger(logger);
          app.useGlobalFilters(new HttpExceptionFilter());
        },
      })),
  );
  afterAll(() => t.close());
  beforeEach(() => logger.reset());

  const closeOf = async (path: string) => {
    const client = clients.track(await WsClient.connect(t.url(path)));
    expect(await client.nextText()).toBe('started');
    return client.waitClosed();
  };
  const warningsNaming = (name: string) => logger.warns.filter((line) => line.startsWith(`${name} failed`));

  it('closes a WebSocketCloseException no filter catches with its code, logged at debug level only', async () => {
    expect(await closeOf('/own-code')).toEqual({ code: 4001, reason: 'deliberate' });
    expect(logger.debugs).toContain('Closing /own-code with 4001: Error: WebSocket closed with 4001: deliberate');
    expect(logger.warns).toEqual([]);
    expect(logger.errors).toEqual([]);
  });

  it("closes a ForbiddenException with 1008 despite Nest's documented global HttpExceptionFilter, and names that filter once", async () => {
    expect(await closeOf('/members')).toEqual({ code: 1008, reason: 'members only' });
    expect(await closeOf('/members')).toEqual({ code: 1008, reason: 'members only' });
    const [warning, ...more] = warningsNaming('HttpExceptionFilter');
    expect(more).toEqual([]);
    expect(warning).toBe(
      "HttpExceptionFilter failed on the WebSocket route /members after the 101 (TypeError: Cannot read properties of undefined (reading 'status')), " +
        "so the session closes with the default code: 1008 for a 4xx HttpException, a WebSocketCloseException's own code, else 1011. " +
        "After the 101, filters run with host.getType() === 'ws': check it before host.switchToHttp() to handle both. Said once per filter class.",
    );
    // Each refusal is still logged as the default mapping logs it, and nothing is an error.
    expect(logger.warns.filter((line) => line === 'Closing /members with 1008: ForbiddenException: members only')).toHaveLength(2);
    expect(logger.errors).toEqual([]);
  });

  it('closes with what a filter that checks host.getType() chooses, and warns of nothing', async () => {
    expect(await closeOf('/both-contexts')).toEqual({ code: 1011, reason: 'come back later' });
    expect(logger.warns).toEqual([]);
  });

  it('falls back the same way when the filter’s promise rejects', async () => {
    expect(await closeOf('/async-filtered')).toEqual({ code: 1008, reason: 'async filter' });
    expect(await closeOf('/async-filtered')).toEqual({ code: 1008, reason: 'async filter' });
    expect(warningsNaming('AsyncHttpFilter')).toHaveLength(1);
    expect(logger.errors).toEqual([]);
  });

  it('falls back the same way when the filter’s observable errors: a WebSocketCloseException keeps its code', async () => {
    expect(await closeOf('/rpc-filtered')).toEqual({ code: 4001, reason: 'own code' });
    expect(await closeOf('/rpc-filtered')).toEqual({ code: 4001, reason: 'own code' });
    const [warning, ...more] = warningsNaming('RpcStyleFilter');
    expect(more).toEqual([]);
    expect(warning).toContain('(Error: this filter only knows RPC)');
    expect(logger.errors).toEqual([]);
  });

  it('closes with the CloseReason a filter’s observable emits, and warns of nothing', async () => {
    expect(await closeOf('/observable-close')).toEqual({ code: 4005, reason: 'from an observable' });
    expect(logger.warns).toEqual([]);
  });
});
