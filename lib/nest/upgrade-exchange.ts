/**
 * The request and response that guards, pipes, param decorators and HTTP
 * exception filters see for an upgrade request, shaped like the platform's
 * own: Express's `req`/`res` (`req.query`, `req.get()`, `res.status().json()`);
 * on Fastify the Node request with `params`, `query`, `ip` and `raw`, and a
 * Fastify reply (`reply.code().send()`), made by Nest's adapter as it makes
 * them for middleware errors. The response writes on the upgrade socket, so
 * a refusal is a real HTTP answer.
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

/** FastifyAdapter's way to wrap a Node response in a Fastify reply (not in its public types). */
interface RawResponseWrapping {
  createReplyForRawResponse?(response: ServerResponse): unknown;
}

const sessions = new WeakMap<IncomingMessage, BaseWebSocketSession>();

/** The session an upgrade request opens (or would open), for `@WsSession()` and the WEBSOCKET_SESSION provider. */
export function sessionOfRequest(request: unknown): BaseWebSocketSession | undefined {
  return sessions.get(request as IncomingMessage);
}

export function createUpgradeExchange(httpAdapter: HttpServer, session: BaseWebSocketSession): UpgradeExchange {
  const { request } = session.call;
  const socket = request.socket;
  sessions.set(request, session);
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
    if (expressDressed) (request as IncomingMessage & { res?: unknown }).res = undefined;
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
  const { params, query } = session.call;
  if (expressDressed) {
    dressForExpress(httpAdapter.getInstance() as ExpressApplication, request, response, params);
    return { request, response, release, abort };
  }
  Object.assign(request, { params, query, ip: socket.remoteAddress, raw: request });
  const reply = (httpAdapter as RawResponseWrapping).createReplyForRawResponse?.(response) ?? response;
  return { request, response: reply, release, abort };
}

/**
 * What Express's own `init` middleware does to every request it routes.
 * Properties go on before the prototype: added after it, V8 gives each
 * object a hidden class of its own (about 0.9 KiB each, kept as long as the session).
 */
function dressForExpress(
  app: ExpressApplication,
  request: IncomingMessage,
  response: ServerResponse,
  params: Readonly<Record<string, string>>,
): void {
  Object.assign(request, { res: response, params: { ...params } });
  Object.assign(response, { req: request, locals: Object.create(null) });
  Object.setPrototypeOf(request, app.request);
  Object.setPrototypeOf(response, app.response);
}
