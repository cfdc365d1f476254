/**
 * Binds the mapped routes to Nest's HTTP server: claims the upgrades whose
 * path is a route's, checks the handshake, picks the route by subprotocol,
 * and hands the pending session to the route. Paths it does not own are
 * left to other `upgrade` listeners, and answered 404 only when there are none.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Injectable, Logger } from '@nestjs/common';
import type { HttpServer } from '@nestjs/common';
import { CloseCode, CloseReason } from '../protocol/close-reason.js';
import { errorBody } from '../protocol/handshake.js';
import type { WebSocketApplicationContext } from '../session/websocket-session.js';
import { parseRequestTarget } from '../upgrade/request-target.js';
import { prepareSession, refuseUpgrade } from '../upgrade/websocket-upgrade.js';
import {
  MappedWebSocketRoute,
  pathShape,
  type PathMatching,
  type WebSocketRouteDefinition,
} from './mapped-websocket-route.js';
import { RouteIndex } from './route-index.js';
import { TakenUpgrade, type UpgradeLedger } from './taken-upgrade.js';
import { claimUpgrades } from './upgrade-claim.js';
import { WebSocketSessions } from './websocket-sessions.registry.js';

const GOING_AWAY = new CloseReason(CloseCode.GOING_AWAY, 'Server is shutting down');
/** Before mounting and after unmounting: an index matches nothing, whatever its path matching. */
const NO_ROUTES = new RouteIndex([], { sensitive: true, trailing: false });

@Injectable()
export class WebSocketUpgradeRouter {
  private readonly logger = new Logger('WebSocketRoutes');
  private routes = NO_ROUTES;
  private application: WebSocketApplicationContext | undefined;
  private acceptingSessions = true;
  private server: Server | undefined;
  private release: (() => void) | undefined;
  private maxConnections = Infinity;
  /** Upgrades taken and not over yet (deciding before the 101, or open), in all and per route. */
  private connections = 0;
  private readonly routeConnections = new Map<WebSocketRouteDefinition, number>();

  /** What each taken upgrade asks of the router. */
  private readonly ledger: UpgradeLedger;

  constructor(private readonly sessions: WebSocketSessions) {
    this.ledger = {
      sessions,
      isAccepting: () => this.acceptingSessions,
      release: (definition) => {
        this.connections--;
        this.routeConnections.set(definition, (this.routeConnections.get(definition) ?? 1) - 1);
      },
    };
  }

  /**
   * Binds the routes to the HTTP server: the upgrade claim, and a 426 answer
   * for plain GETs on route paths that no HTTP route took. Throws when two
   * routes would take the same requests. Past `maxConnections` sessions at
   * once (all routes), upgrades get 503.
   */
  mount(
    definitions: WebSocketRouteDefinition[],
    httpAdapter: HttpServer,
    application: WebSocketApplicationContext,
    maxConnections = Infinity,
  ): void {
    this.maxConnections = maxConnections;
    const matching = pathMatchingOf(httpAdapter);
    checkCollisions(definitions, matching);
    const routes = definitions.map((definition) => new MappedWebSocketRoute(definition, matching));
    this.routes = new RouteIndex(routes, matching);
    this.application = application;
    const registeredPaths = new Set<string>();
    for (const { definition } of routes) {
      const kind = definition.raw ? 'WS raw' : 'WS';
      const protocol = definition.protocol === undefined ? '' : ` ${definition.protocol}`;
      this.logger.log(`Mapped {${definition.path}, ${kind}${protocol}} route (${definition.name})`);
      if (registeredPaths.has(definition.path)) continue;
      registeredPaths.add(definition.path);
      registerUpgradeRequired(httpAdapter, definition.path);
    }
    this.server = httpAdapter.getHttpServer() as Server;
    this.release = claimUpgrades(
      this.server,
      (request, socket, head) => this.claim(request, socket, head),
      (request, socket) => this.unclaimed(request, socket),
    );
  }

  /** Refuses new sessions, then closes the open ones (see WebSocketSessions.closeAll). */
  async shutdown(timeoutMs: number): Promise<void> {
    this.acceptingSessions = false;
    await this.sessions.closeAll(timeoutMs, GOING_AWAY);
    this.sessions.endPublishing();
  }

  unmount(): void {
    this.release?.();
    this.release = undefined;
    this.server = undefined;
    this.routes = NO_ROUTES;
  }

  /** Never lets an error escape into the HTTP server's event emitter, where it would crash the process. */
  private claim(request: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    try {
      const target = parseRequestTarget(request);
      const candidates = target === undefined ? [] : this.routes.candidatesAt(target.pathname);
      if (target === undefined || candidates.length === 0) return false;
      if (!this.acceptingSessions) {
        refuseUpgrade(request, socket, 503, 'Server is shutting down');
        return true;
      }
      if (this.connections >= this.maxConnections) {
        refuseUpgrade(request, socket, 503, `Too many connections (maxConnections ${this.maxConnections})`);
        return true;
      }
      const taken = new TakenUpgrade(this.ledger);
      const pending = prepareSession(request, socket, head, target, candidates, this.application, taken);
      if (pending === undefined) return true;
      const { definition } = pending.candidate;
      const onRoute = this.routeConnections.get(definition) ?? 0;
      if (definition.maxConnections !== undefined && onRoute >= definition.maxConnections) {
        refuseUpgrade(request, socket, 503, `Too many connections to ${definition.path} (maxConnections ${definition.maxConnections})`);
        return true;
      }
      this.connections++;
      this.routeConnections.set(definition, onRoute + 1);
      taken.begin(definition, pending.session);
      try {
        definition.handle(pending, taken);
      } catch (error) {
        taken.failed(error); // counted as taken above: released the same way
      }
      taken.armDeadline(request, socket);
    } catch (error) {
      this.logger.error(`Upgrade of ${request.url ?? '?'} failed: ${String(error)}`, (error as Error)?.stack);
      refuseUpgrade(request, socket, 500, 'Internal server error');
    }
    return true;
  }

  /** An upgrade no route claimed: another listener may own its path. */
  private unclaimed(request: IncomingMessage, socket: Duplex): void {
    if ((this.server?.listenerCount('upgrade') ?? 0) > 1) return;
    const path = parseRequestTarget(request)?.pathname ?? request.url;
    refuseUpgrade(request, socket, 404, `No WebSocket route at ${path}`);
  }
}

/** Two routes collide when they match the same paths and ask for the same subprotocol (or none). */
function checkCollisions(definitions: WebSocketRouteDefinition[], matching: PathMatching): void {
  const seen = new Map<string, WebSocketRouteDefinition>();
  for (const definition of definitions) {
    const shape = pathShape(definition.path);
    const key = `${matching.sensitive ? shape : shape.toLowerCase()} ${definition.protocol ?? ''}`;
    const other = seen.get(key);
    if (other !== undefined) {
      const protocol = definition.protocol === undefined ? 'no subprotocol' : `subprotocol ${definition.protocol}`;
      throw new Error(
        `WebSocket routes collide: ${other.name} {${other.path}} and ${definition.name} {${definition.path}} both take ${protocol}`,
      );
    }
    seen.set(key, definition);
  }
}

/** Express: its `case sensitive routing` and `strict routing` settings; Fastify: `caseSensitive` and `ignoreTrailingSlash`. */
function pathMatchingOf(httpAdapter: HttpServer): PathMatching {
  const instance = httpAdapter.getInstance() as {
    get?(setting: string): unknown;
    initialConfig?: { caseSensitive?: boolean; ignoreTrailingSlash?: boolean };
  };
  switch (httpAdapter.getType()) {
    case 'express':
      return { sensitive: instance.get?.('case sensitive routing') === true, trailing: instance.get?.('strict routing') !== true };
    case 'fastify':
      return {
        sensitive: instance.initialConfig?.caseSensitive !== false,
        trailing: instance.initialConfig?.ignoreTrailingSlash === true,
      };
    default:
      return { sensitive: false, trailing: true };
  }
}

/** What a plain GET on a WebSocket path gets: the same JSON as the handshake's refusals. */
const UPGRADE_REQUIRED = errorBody(426, 'This path only speaks WebSocket: connect with a WebSocket client (Upgrade: websocket)');

/**
 * A plain GET on a WebSocket path answers 426. Registered after Nest's own
 * routes, so an HTTP route on the same path keeps its GETs (Fastify refuses
 * a second GET route on a path: the HTTP route simply stays).
 */
function registerUpgradeRequired(httpAdapter: HttpServer, path: string): void {
  const reply = (_request: unknown, response: unknown) => {
    httpAdapter.setHeader(response, 'Upgrade', 'websocket');
    httpAdapter.setHeader(response, 'Sec-WebSocket-Version', '13');
    httpAdapter.setHeader(response, 'Content-Type', 'application/json; charset=utf-8');
    httpAdapter.reply(response, UPGRADE_REQUIRED, 426);
  };
  const normalized = httpAdapter.normalizePath?.(path) ?? path;
  try {
    httpAdapter.get(normalized, reply);
  } catch (error) {
    if ((error as { code?: string }).code !== 'FST_ERR_DUPLICATED_ROUTE') throw error;
  }
}
