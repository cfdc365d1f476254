/**
 * The request and response that guards, pipes, param decorators and HTTP
 * exception filters see for an upgrade request, shaped like the platform's
 * own: Express's `req`/`res` (`req.query`, `req.get()`, `res.status().json()`);
 * on Fastify the Node request with `params`, `query`, `ip` and `raw`, and a
 * Fastify reply (`reply.code().send()`), made by Nest's adapter as it makes
 * them for middleware errors. The response writes on the upgrade socket, so
 * a refusal is a real HTTP answer; it is made only for routes that have
 * something to decide before the 101 (guards, interceptors, pipes, a
 * REQUEST-scoped controller), or an error to answer.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { HttpServer } from '@nestjs/common';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';

export interface UpgradeExchange {
  readonly request: IncomingMessage;
  /** The platform's response object (Express `res`, Fastify reply, or Node's response). */
  readonly response: unknown;
  /**
   * Detaches the response once the socket carries WebSocket frames: nothing HTTP may be written to it any more.
   * On Express, `request.res` becomes undefined: the request outlives the exchange as the session's `call.request`.
   */
  release(): void;
  /** Answers 500 when nothing was answered yet (a filter failed), else drops the connection. */
  abort(): void;
}

interface ExpressApplication {
  request: object;
  response: object;
}

type ExpressRequest = IncomingMessage & { res?: ServerResponse };

/** FastifyAdapter's way to wrap a Node response in a Fastify reply (not in its public types). */
interface RawResponseWrapping {
  createReplyForRawResponse?(response: ServerResponse): unknown;
}

const sessions = new WeakMap<IncomingMessage, BaseWebSocketSession>();

/** The session an upgrade request opens (or would open), for `@WsSession()` and the WEBSOCKET_SESSION provider. */
export function sessionOfRequest(request: unknown): BaseWebSocketSession | undefined {
  return sessions.get(request as IncomingMessage);
}

/**
 * Makes the upgrade request the platform's own, for every upgrade: it is what
 * `@Req()`, guards and `session.call.request` see. Its response is made only
 * when something needs one (createUpgradeExchange).
 */
export function dressUpgradeRequest(httpAdapter: HttpServer, session: BaseWebSocketSession): void {
  const { request, params } = session.call;
  if (httpAdapter.getType() === 'express') {
    dressForExpress(httpAdapter.getInstance() as ExpressApplication, request, params);
  } else {
    Object.assign(request, { params: { ...params }, query: session.call.query, ip: request.socket.remoteAddress, raw: request });
  }
}

/**
 * The response half, on the upgrade socket, for a request that dressUpgradeRequest dressed; from here on
 * the request finds its session (what guards, pipes, filters and REQUEST-scoped providers may ask for).
 */
export function createUpgradeExchange(httpAdapter: HttpServer, session: BaseWebSocketSession): UpgradeExchange {
  const { request } = session.call;
  sessions.set(request, session);
  const socket = request.socket;
  const expressDressed = httpAdapter.getType() === 'express';
  const response = new ServerResponse(request);
  response.shouldKeepAlive = false;
  response.assignSocket(socket);
  // A refusal ends the connection once its answer left ('finish' comes once: no once-wrapper kept for the session).
  response.on('finish', () => {
    socket.once('finish', () => socket.destroy());
    socket.end();
  });
  const release = () => {
    response.detachSocket(socket);
    // The HTTP exchange is over at the 101: Express's `req.res` would keep the response as long as the request (the session's `call.request`).
    if (expressDressed) (request as ExpressRequest).res = undefined;
  };
  const abort = () => {
    if (response.headersSent) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({ statusCode: 500, message: 'Internal server error' });
    response.writeHead(500, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    response.end(body);
  };
  if (expressDressed) {
    const app = httpAdapter.getInstance() as ExpressApplication;
    (request as ExpressRequest).res = response;
    Object.assign(response, { req: request, locals: Object.create(null) });
    Object.setPrototypeOf(response, app.response);
    return { request, response, release, abort };
  }
  const reply = (httpAdapter as RawResponseWrapping).createReplyForRawResponse?.(response) ?? response;
  return { request, response: reply, release, abort };
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
