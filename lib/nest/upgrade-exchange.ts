/**
 * The request and response that guards, pipes, param decorators and HTTP
 * exception filters see for an upgrade request, shaped like the platform's
 * own: Express's `req`/`res` (`req.query`, `req.get()`, `res.status().json()`);
 * on Fastify the Node request with `params`, `query`, `ip` and `raw`, and a
 * Fastify reply (`reply.code().send()`), made by Nest's adapter as it makes
 * them for middleware errors. The response writes on the upgrade socket, so
 * a refusal is a real HTTP answer; it is made only for routes that have
 * something to decide before the 101 (guards, interceptors, pipes, a
 * REQUEST-scoped controller), or an error to answer. Where nothing decides,
 * an Express request is dressed when the method first reads it, if ever.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { HttpServer } from '@nestjs/common';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';
import { UpgradeCall, type RequestDresser } from '../upgrade/upgrade-call.js';

interface ExpressApplication {
  request: object;
  response: object;
}

type ExpressRequest = IncomingMessage & { res?: ServerResponse };

/** FastifyAdapter's way to wrap a Node response in a Fastify reply (not in its public types). */
interface RawResponseWrapping {
  createReplyForRawResponse?(response: ServerResponse): unknown;
}

/**
 * Where an upgrade request keeps the session it opens: a property rather than an entry in a WeakMap,
 * which costs the garbage collector about 1 µs per live session (Node 26).
 */
const SESSION = Symbol('nest-websocket-routes session');

type SessionRequest = IncomingMessage & { [SESSION]?: BaseWebSocketSession };

/** The session an upgrade request opens (or would open), for `@WsSession()` and the WEBSOCKET_SESSION provider. */
export function sessionOfRequest(request: unknown): BaseWebSocketSession | undefined {
  return typeof request === 'object' && request !== null ? (request as SessionRequest)[SESSION] : undefined;
}

/** A refusal ends the connection once its answer left; `this` is the response ('finish' comes once: no once-wrapper). */
function endConnection(this: ServerResponse): void {
  const socket = this.req.socket;
  socket.once('finish', () => socket.destroy());
  socket.end();
}

/** One upgrade's request and the response on its socket. */
export class UpgradeExchange {
  constructor(
    readonly request: IncomingMessage,
    /** The platform's response object (Express `res`, Fastify reply, or Node's response). */
    readonly response: unknown,
    /** The Node response under it. */
    private readonly raw: ServerResponse,
    private readonly expressDressed: boolean,
  ) {}

  /**
   * Detaches the response once the socket carries WebSocket frames: nothing HTTP may be written to it any more.
   * On Express, `request.res` becomes undefined: the request outlives the exchange as the session's `call.request`.
   */
  release(): void {
    this.raw.detachSocket(this.request.socket);
    if (this.expressDressed) (this.request as ExpressRequest).res = undefined;
  }

  /** Answers 500 when nothing was answered yet (a filter failed), else drops the connection. */
  abort(): void {
    const { raw } = this;
    if (raw.headersSent) {
      this.request.socket.destroy();
      return;
    }
    const body = JSON.stringify({ statusCode: 500, message: 'Internal server error' });
    raw.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    raw.end(body);
  }
}

/**
 * Dresses upgrade requests and makes exchanges for one HTTP adapter: what
 * depends on the platform is worked out once, when the routes are mounted.
 */
export class UpgradeExchanges {
  private readonly express: ExpressApplication | undefined;
  /**
   * Makes Node responses that have Express's `app.response` as their prototype from the start, as
   * `Reflect.construct` does with it as `new.target`: setting the prototype afterwards, as Express's
   * `init` does, costs about 1 µs per response on Node 26 (the more properties an object has, the more).
   */
  private readonly ExpressResponse: (new () => object) | undefined;

  constructor(private readonly httpAdapter: HttpServer) {
    if (httpAdapter.getType() !== 'express') return;
    this.express = httpAdapter.getInstance() as ExpressApplication;
    const ExpressResponse = function () {} as unknown as new () => object;
    ExpressResponse.prototype = this.express.response;
    this.ExpressResponse = ExpressResponse;
  }

  /**
   * Makes an upgrade request the platform's own: it is what `@Req()`, guards
   * and `session.call.request` see. Its response is made only when something
   * needs one (`create`).
   */
  private readonly dressRequest: RequestDresser = (request, call) => {
    if (this.express !== undefined) {
      dressForExpress(this.express, request, call.params);
    } else {
      Object.assign(request, { params: { ...call.params }, query: call.query, ip: request.socket.remoteAddress, raw: request });
    }
  };

  /** Dresses the request now: guards, interceptors, pipes or a REQUEST-scoped controller see it before the 101. */
  dress(call: UpgradeCall): void {
    this.dressRequest(call.request, call);
  }

  /**
   * Dresses the request on its first read through `session.call.request`, for a route where nothing else
   * reads it. On Express only: there dressing is the same whenever it happens, while Fastify's `ip` is the
   * socket's address, which is gone once the socket closed.
   */
  dressWhenRead(call: UpgradeCall): void {
    if (this.express === undefined) this.dress(call);
    else UpgradeCall.dressRequestWhenRead(call, this.dressRequest);
  }

  /**
   * The response half, on the upgrade socket, for a request that `dress` dressed; from here on
   * the request finds its session (what guards, pipes, filters and REQUEST-scoped providers may ask for).
   */
  create(session: BaseWebSocketSession): UpgradeExchange {
    const { request } = session.call;
    // Not enumerable: util.inspect(request) and { ...request } leave the session out, as a WeakMap did.
    Object.defineProperty(request, SESSION, { value: session });
    const { express, ExpressResponse } = this;
    const raw: ServerResponse =
      ExpressResponse === undefined ? new ServerResponse(request) : Reflect.construct(ServerResponse, [request], ExpressResponse);
    raw.shouldKeepAlive = false;
    raw.assignSocket(request.socket);
    raw.on('finish', endConnection);
    if (express !== undefined) {
      (request as ExpressRequest).res = raw;
      (raw as ServerResponse & { locals: object }).locals = Object.create(null);
      return new UpgradeExchange(request, raw, raw, true);
    }
    const reply = (this.httpAdapter as RawResponseWrapping).createReplyForRawResponse?.(raw) ?? raw;
    return new UpgradeExchange(request, reply, raw, false);
  }
}

/**
 * What Express's own `init` middleware does to every request it routes; `res`
 * is there from the start, set while a response exists. Properties go on before
 * the prototype: added after it, V8 gives each object a hidden class of its own
 * (about 0.9 KiB each, kept as long as the session).
 */
function dressForExpress(app: ExpressApplication, request: IncomingMessage, params: Readonly<Record<string, string>>): void {
  Object.assign(request, { res: undefined, params: { ...params } });
  Object.setPrototypeOf(request, app.request);
}
