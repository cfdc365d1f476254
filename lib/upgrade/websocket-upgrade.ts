/**
 * The opening handshake on a raw `(request, socket, head)` and the start of
 * a session on it, as Ktor's `WebSocketUpgrade`: the programmatic path, with
 * no decorator needed. The route router accepts connections through the same
 * functions.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Logger } from '@nestjs/common';
import {
  errorResponse,
  HandshakeError,
  offeredProtocols,
  switchingProtocolsResponse,
  validateUpgradeRequest,
} from '../protocol/handshake.js';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';
import { DefaultWebSocketServerSessionImpl } from '../session/default-websocket-session.js';
import { RawWebSocketServerSession } from '../session/raw-websocket-session.js';
import { WebSocketConnection } from '../session/websocket-connection.js';
import type {
  DefaultWebSocketServerSession,
  WebSocketApplicationContext,
  WebSocketServerSession,
} from '../session/websocket-session.js';
import {
  resolveSessionSettings,
  type SessionSettings,
  type WebSocketSessionOptions,
} from '../session/websocket-session-options.js';

const logger = new Logger('WebSocketUpgrade');

/** Answers an upgrade request with an HTTP error and closes the socket. */
export function refuseUpgrade(socket: Duplex, status: number, message: string, headers?: Record<string, string>): void {
  if (socket.writable) {
    socket.once('finish', () => socket.destroy());
    socket.end(errorResponse(status, message, headers));
  } else {
    socket.destroy();
  }
}

export function refuseWithHandshakeError(request: IncomingMessage, socket: Duplex, error: HandshakeError): void {
  logger.warn(`Refused upgrade of ${request.url ?? '?'} with ${error.status}: ${error.message}`);
  refuseUpgrade(socket, error.status, error.message, error.headers);
}

function parseQuery(search: URLSearchParams): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of search) {
    const previous = query[name];
    query[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return query;
}

/** The request target as a URL, or undefined when it cannot be parsed (the HTTP parser lets odd ones through). */
export function parseRequestTarget(request: IncomingMessage): URL | undefined {
  try {
    return new URL(request.url ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

export interface AcceptOptions {
  url: URL;
  key: string;
  protocol: string | undefined;
  raw: boolean;
  settings: SessionSettings;
  params: Record<string, string>;
  application: WebSocketApplicationContext | undefined;
}

/** Writes the 101 response and builds the session over the socket (not yet started). */
export function acceptUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, options: AcceptOptions): BaseWebSocketSession {
  socket.write(switchingProtocolsResponse(options.key, options.protocol));
  const url = options.url;
  const call = {
    request,
    path: url.pathname,
    params: options.params,
    query: parseQuery(url.searchParams),
    headers: request.headers,
    protocol: options.protocol,
  };
  const connection = new WebSocketConnection(
    socket as Socket,
    head,
    options.settings.maxFrameSize,
    options.settings.closeTimeout,
  );
  const Session = options.raw ? RawWebSocketServerSession : DefaultWebSocketServerSessionImpl;
  return new Session(connection, call, options.application, options.settings);
}

export interface WebSocketUpgradeOptions extends WebSocketSessionOptions {
  /** Subprotocol the client must offer; it is echoed in the 101 response. */
  protocol?: string;
  /** Start a raw session (the default, as Ktor's WebSocketUpgrade), or a default session with `false`. */
  raw?: boolean;
  /** What `session.application` returns: your Nest `app`, or an injected `ModuleRef`. */
  application?: WebSocketApplicationContext;
}

type UpgradeHandler<Raw> = (session: Raw extends false ? DefaultWebSocketServerSession : WebSocketServerSession) => unknown;

/**
 * Handles one upgrade request outside decorated routes, e.g. in your own
 * `server.on('upgrade')` listener: `await upgrade.handle(request, socket, head)`.
 */
export class WebSocketUpgrade<Raw extends boolean = true> {
  private readonly settings: SessionSettings;

  constructor(
    private readonly options: WebSocketUpgradeOptions & { raw?: Raw },
    private readonly handler: UpgradeHandler<Raw>,
  ) {
    this.settings = resolveSessionSettings(options);
  }

  /**
   * Checks the handshake, answers 101 (or an HTTP error), and runs the handler.
   * Resolves when the connection is gone, or at once when the upgrade was refused.
   */
  async handle(request: IncomingMessage, socket: Duplex, head: Buffer, params: Record<string, string> = {}): Promise<void> {
    socket.on('error', () => undefined);
    let key: string;
    const url = parseRequestTarget(request);
    try {
      if (url === undefined) throw new HandshakeError(400, 'Malformed request target');
      key = validateUpgradeRequest(request.method, request.headers);
      const protocol = this.options.protocol;
      if (protocol !== undefined && !offeredProtocols(request.headers).includes(protocol)) {
        throw new HandshakeError(400, `Subprotocol "${protocol}" is required`);
      }
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      refuseWithHandshakeError(request, socket, error);
      return;
    }
    const session = acceptUpgrade(request, socket, head, {
      url,
      key,
      protocol: this.options.protocol,
      raw: this.options.raw ?? true,
      settings: this.settings,
      params,
      application: this.options.application,
    });
    await session.run(this.handler);
  }
}
