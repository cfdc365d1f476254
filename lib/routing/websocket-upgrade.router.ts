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
import {
  parseRequestTarget,
  refuseUpgrade,
  upgradeToSession,
  type UpgradeCandidate,
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
      refuseUpgrade(request, socket, 500, 'Internal server error');
    }
  }

  private routeUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = parseRequestTarget(request);
    const candidates = url === undefined ? [] : this.routesAt(url.pathname);
    if (url === undefined || candidates.length === 0) {
      // Another listener (a gateway, a ws server) may own this path.
      if ((this.server?.listenerCount('upgrade') ?? 0) <= 1) {
        refuseUpgrade(request, socket, 404, `No WebSocket route at ${url?.pathname ?? request.url}`);
      }
      return;
    }
    if (!this.acceptingSessions) {
      refuseUpgrade(request, socket, 503, 'Server is shutting down');
      return;
    }
    const started = upgradeToSession(request, socket, head, url, candidates, this.application);
    if (started !== undefined) this.sessions.track(started.session, started.run);
  }

  private routesAt(pathname: string): UpgradeCandidate[] {
    const candidates: UpgradeCandidate[] = [];
    for (const route of this.routes) {
      const params = route.match(pathname);
      if (params !== undefined) candidates.push({ ...route.definition, params });
    }
    return candidates;
  }
}
