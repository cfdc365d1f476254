/**
 * The request and response that guards, pipes, param decorators and HTTP
 * exception filters see for an upgrade request, shaped like the platform's
 * own: Express's `req`/`res` (`req.query`, `req.get()`, `res.status().json()`),
 * or, on other platforms, the Node request with `params`, `query` and `ip`
 * and the Node response that Nest's adapters answer through. The response
 * writes on the upgrade socket, so a refusal is a real HTTP answer.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpServer } from '@nestjs/common';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';

export interface UpgradeExchange {
  readonly request: IncomingMessage;
  readonly response: ServerResponse;
  /** Detaches the response once the socket carries WebSocket frames: nothing HTTP may be written to it any more. */
  release(): void;
}

interface ExpressApplication {
  request: object;
  response: object;
}

const sessions = new WeakMap<IncomingMessage, BaseWebSocketSession>();

/** The session an upgrade request opens (or would open), for `@WsSession()` and the WEBSOCKET_SESSION provider. */
export function sessionOfRequest(request: unknown): BaseWebSocketSession | undefined {
  return sessions.get(request as IncomingMessage);
}

export function createUpgradeExchange(
  httpAdapter: HttpServer,
  request: IncomingMessage,
  socket: Socket,
  session: BaseWebSocketSession,
): UpgradeExchange {
  sessions.set(request, session);
  const response = new ServerResponse(request);
  response.shouldKeepAlive = false;
  response.assignSocket(socket);
  // A refusal ends the connection once its answer left.
  response.once('finish', () => {
    socket.once('finish', () => socket.destroy());
    socket.end();
  });
  const { params, query } = session.call;
  if (httpAdapter.getType() === 'express') {
    dressForExpress(httpAdapter.getInstance() as ExpressApplication, request, response, params);
  } else {
    Object.assign(request, { params, query, ip: socket.remoteAddress });
  }
  return { request, response, release: () => response.detachSocket(socket) };
}

/** What Express's own `init` middleware does to every request it routes. */
function dressForExpress(
  app: ExpressApplication,
  request: IncomingMessage,
  response: ServerResponse,
  params: Readonly<Record<string, string>>,
): void {
  Object.setPrototypeOf(request, app.request);
  Object.setPrototypeOf(response, app.response);
  Object.assign(request, { res: response, params: { ...params } });
  Object.assign(response, { req: request, locals: Object.create(null) });
}
