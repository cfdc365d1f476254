/**
 * The response a guard sees for an upgrade request (`switchToHttp().getResponse()`),
 * on both HTTP platforms: on Express a `res` made with Express's own
 * prototype (`status()`, `json()`, `locals`, `req`), the request's `res`
 * while the guard decides; on Fastify a reply over the Node response. And a
 * guard that answers through that response gets its answer to the client,
 * which then sees the connection end. Where nothing decides before the 101,
 * the request is dressed as Express's only when the method reads it.
 */
import 'reflect-metadata';
import { IncomingMessage, ServerResponse, type Server } from 'node:http';
import { Controller, Injectable, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { RawClient } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

/** What the guard saw of the response, sent by the route method once the session is open. */
interface ResponseReport {
  isNodeResponse: boolean;
  /** Express: the prototype is the application's `app.response`, so `status()`, `json()` and `send()` are there. */
  expressPrototype: boolean;
  expressMethods: boolean;
  locals: boolean;
  responseReqIsRequest: boolean;
  requestResIsResponse: boolean;
  /** Fastify: a reply, with `code()` and the Node response as `raw`. */
  fastifyReply: boolean;
  /** Sent by the route method: a property of `{ ...request }` holds the session. */
  sessionInSpread?: boolean;
}

let lastReport: ResponseReport | undefined;

type ExpressLike = ServerResponse & { status?: unknown; json?: unknown; locals?: unknown };

@Injectable()
class ReportingGuard implements CanActivate {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<{ res?: unknown }>();
    const response = http.getResponse<ExpressLike & { code?: unknown; raw?: unknown }>();
    const adapter = this.adapterHost.httpAdapter;
    const express = adapter.getType() === 'express' ? (adapter.getInstance() as { response: object }) : undefined;
    lastReport = {
      isNodeResponse: response instanceof ServerResponse,
      expressPrototype: express !== undefined && Object.getPrototypeOf(response) === express.response,
      expressMethods: typeof response.status === 'function' && typeof response.json === 'function',
      locals: typeof response.locals === 'object' && response.locals !== null,
      responseReqIsRequest: response.req === request,
      requestResIsResponse: request.res === response,
      fastifyReply: typeof response.code === 'function' && response.raw instanceof ServerResponse,
    };
    return true;
  }
}

/** Answers 418 itself with Express's response API, and lets nothing through. */
@Injectable()
class TeapotGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    context.switchToHttp().getResponse<{ status(code: number): { json(body: unknown): void } }>().status(418).json({ teapot: true });
    return false;
  }
}

@Controller()
class ExchangeController {
  @WebSocketRoute('reported')
  @UseGuards(ReportingGuard)
  async reported(session: DefaultWebSocketServerSession): Promise<void> {
    // The request finds its session (@WsSession, WEBSOCKET_SESSION), but a copy or util.inspect of it does not show it.
    const spread: Record<string | symbol, unknown> = { ...session.call.request };
    const sessionInSpread = Reflect.ownKeys(spread).some((key) => spread[key] === session);
    await session.sendSerialized({ ...lastReport, sessionInSpread });
  }

  @WebSocketRoute('teapot')
  @UseGuards(TeapotGuard)
  teapot(): void {
    throw new Error('the guard refused: never called');
  }
}

describe.each(PLATFORMS)('the upgrade response on %s', (platform) => {
  let t: TestApp;
  const clients = new ClientTracker();

  beforeAll(async () => (t = await startApp([ExchangeController], {}, [ReportingGuard, TeapotGuard], { platform })));
  afterEach(() => clients.dropAll());
  afterAll(() => t.close());

  it("is the platform's own response while the guard decides", async () => {
    lastReport = undefined;
    const client = clients.track(await WsClient.connect(t.url('/reported')));
    const report = JSON.parse((await client.next()).data.toString()) as ResponseReport;
    if (platform === 'express') {
      expect(report).toEqual({
        isNodeResponse: true,
        expressPrototype: true,
        expressMethods: true,
        locals: true,
        responseReqIsRequest: true,
        requestResIsResponse: true,
        fastifyReply: false,
        sessionInSpread: false,
      });
    } else {
      expect(report).toMatchObject({ isNodeResponse: false, fastifyReply: true, sessionInSpread: false });
    }
  });

  if (platform !== 'express') return;

  it("carries a guard's own answer to the client, then ends the connection", async () => {
    const { client, response } = await RawClient.open(t.port, '/teapot');
    clients.track(client);
    expect(response.status).toBe(418);
    expect(JSON.parse(response.body)).toEqual({ teapot: true });
    expect(await client.waitForEnd()).toBe(true);
  });
});

/** The upgrade request as the HTTP server emitted it, caught before anything of ours saw it. */
let emittedRequest: IncomingMessage | undefined;

@Controller()
class UndecidedController {
  /** Nothing decides before the 101: on Express the request is dressed when the method first reads it. */
  @WebSocketRoute('undecided/:room')
  async undecided(session: DefaultWebSocketServerSession): Promise<void> {
    const before = { ownParams: Object.hasOwn(emittedRequest!, 'params'), prototype: Object.getPrototypeOf(emittedRequest) === IncomingMessage.prototype };
    const request = session.call.request as IncomingMessage & { params?: unknown; get?: unknown };
    const after = { same: request === emittedRequest, params: request.params, expressGet: typeof request.get === 'function' };
    await session.sendSerialized({ before, after });
  }
}

describe('the upgrade request of a route where nothing decides, on Express', () => {
  let t: TestApp;
  const clients = new ClientTracker();

  beforeAll(async () => {
    t = await startApp([UndecidedController]);
    const server = t.app.getHttpServer() as Server;
    const emit = server.emit;
    server.emit = function (this: Server, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'upgrade') emittedRequest = args[0] as IncomingMessage;
      return Reflect.apply(emit, this, [event, ...args]) as boolean;
    };
  });
  afterEach(() => clients.dropAll());
  afterAll(() => t.close());

  it('is dressed as Express’s own at its first read through session.call.request, not before', async () => {
    const client = clients.track(await WsClient.connect(t.url('/undecided/lobby')));
    expect(JSON.parse((await client.next()).data.toString())).toEqual({
      before: { ownParams: false, prototype: true },
      after: { same: true, params: { room: 'lobby' }, expressGet: true },
    });
  });
});
