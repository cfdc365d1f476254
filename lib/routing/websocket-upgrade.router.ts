/**
 * The one `upgrade` listener on Nest's HTTP server: matches the path to the
 * mapped routes, checks the handshake, picks the route by subprotocol, and
 * starts the session. Paths it does not own are left to other `upgrade`
 * listeners, and answered 404 only when there are none.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger } from '@nestjs/common';
import type { HttpServer } from '@nestjs/common';
import type { WebSocketApplicationContext } from '../session/websocket-session.js';
import { HandshakeError, offeredProtocols, validateUpgradeRequest } from '../protocol/handshake.js';
import {
  acceptUpgrade,
  parseRequestTarget,
  refuseUpgrade,
  refuseWithHandshakeError,
} from '../upgrade/websocket-upgrade.js';
import { MappedWebSocketRoute, type WebSocketRouteDefinition } from './mapped-websocket-route.js';
import { WebSocketSessionsTracker } from './websocket-sessions.tracker.js';

@Injectable()
export class WebSocketUpgradeRouter {
  private readonly logger = new Logger('WebSocketRoutes');
  private routes: MappedWebSocketRoute[] = [];
  private server: Server | undefined;
  private application: WebSocketApplicationContext | undefined;
  private acceptingSessions = true;
  private readonly listener = (request: IncomingMessage, socket: Duplex, head: Buffer) =>
    this.handleUpgrade(request, socket, head);

  constructor(private readonly sessions: WebSocketSessionsTracker) {}

  /**
   * Binds the routes to the HTTP server: the `upgrade` listener, and a 426
   * answer for plain GETs on route paths that no HTTP route took.
   */
  mount(definitions: WebSocketRouteDefinition[], httpAdapter: HttpServer, application: WebSocketApplicationContext): void {
    this.routes = definitions.map((definition) => new MappedWebSocketRoute(definition));
    this.application = application;
    const registeredPaths = new Set<string>();
    for (const { definition } of this.routes) {
      const kind = definition.raw ? 'WS raw' : 'WS';
      const protocol = definition.protocol === undefined ? '' : ` ${definition.protocol}`;
      this.logger.log(`Mapped {${definition.path}, ${kind}${protocol}} route (${definition.name})`);
      if (registeredPaths.has(definition.path)) continue;
      registeredPaths.add(definition.path);
      httpAdapter.get(definition.path, (_request: unknown, response: unknown) => {
        httpAdapter.setHeader(response, 'Upgrade', 'websocket');
        httpAdapter.setHeader(response, 'Sec-WebSocket-Version', '13');
        httpAdapter.setHeader(response, 'Content-Type', 'text/plain; charset=utf-8');
        httpAdapter.reply(response, 'Upgrade Required: this path only speaks WebSocket\n', 426);
      });
    }
    this.server = httpAdapter.getHttpServer() as Server;
    this.server.on('upgrade', this.listener);
  }

  /** Refuses new sessions, then closes the open ones (see WebSocketSessionsTracker.closeAll). */
  async shutdown(timeoutMs: number): Promise<void> {
    this.acceptingSessions = false;
    await this.sessions.closeAll(timeoutMs);
  }

  unmount(): void {
    this.server?.off('upgrade', this.listener);
    this.server = undefined;
  }

  /** Never lets an error escape into the HTTP server's event emitter, where it would crash the process. */
  private handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    try {
      this.routeUpgrade(request, socket, head);
    } catch (error) {
      this.logger.error(`Upgrade of ${request.url ?? '?'} failed: ${String(error)}`, (error as Error)?.stack);
      refuseUpgrade(socket, 500, 'Internal server error');
    }
  }

  private routeUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = parseRequestTarget(request);
    const pathname = url?.pathname;
    const candidates: Array<{ route: MappedWebSocketRoute; params: Record<string, string> }> = [];
    for (const route of this.routes) {
      const params = pathname === undefined ? undefined : route.match(pathname);
      if (params !== undefined) candidates.push({ route, params });
    }
    if (url === undefined || candidates.length === 0) {
      // Another listener (a gateway, a ws server) may own this path.
      if ((this.server?.listenerCount('upgrade') ?? 0) <= 1) refuseUpgrade(socket, 404, `No WebSocket route at ${pathname ?? request.url}`);
      return;
    }
    socket.on('error', () => undefined);
    if (!this.acceptingSessions) {
      refuseUpgrade(socket, 503, 'Server is shutting down');
      return;
    }
    let key: string;
    let chosen: (typeof candidates)[number];
    try {
      key = validateUpgradeRequest(request.method, request.headers);
      chosen = selectByProtocol(candidates, offeredProtocols(request.headers));
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      refuseWithHandshakeError(request, socket, error);
      return;
    }
    const { definition } = chosen.route;
    const session = acceptUpgrade(request, socket, head, {
      url,
      key,
      protocol: definition.protocol,
      raw: definition.raw,
      settings: definition.settings,
      params: chosen.params,
      application: this.application,
    });
    this.sessions.track(session, session.run(definition.handler));
  }
}

/**
 * The route whose protocol comes first in the client's list; else one that
 * requires no protocol; else 400.
 */
function selectByProtocol<T extends { route: MappedWebSocketRoute }>(candidates: T[], offered: string[]): T {
  for (const protocol of offered) {
    const match = candidates.find(({ route }) => route.definition.protocol === protocol);
    if (match !== undefined) return match;
  }
  const unprotected = candidates.find(({ route }) => route.definition.protocol === undefined);
  if (unprotected !== undefined) return unprotected;
  const expected = candidates.map(({ route }) => route.definition.protocol).join(', ');
  const got = offered.length === 0 ? 'none' : offered.join(', ');
  throw new HandshakeError(400, `Unsupported subprotocol: this path accepts ${expected}; the client offered ${got}`);
}
