/**
 * One upgrade a route took, from the claim until the route is done with it:
 * the connection slot it holds, the deadline for deciding, and its session
 * once accepted. Its methods are the accept hooks, the route's outcome and
 * the registry's lease, rather than closures over the claim: what the
 * router keeps for a session's life is this one object.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Logger } from '@nestjs/common';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';
import { refuseUpgrade, type AcceptHooks } from '../upgrade/websocket-upgrade.js';
import type { UpgradeOutcome, WebSocketRouteDefinition } from './mapped-websocket-route.js';
import type { SessionLease, WebSocketSessions } from './websocket-sessions.registry.js';

/** What a taken upgrade asks of the router: one object for all of them. */
export interface UpgradeLedger {
  readonly sessions: WebSocketSessions;
  /** False once shutdown began. */
  isAccepting(): boolean;
  /** The upgrade is over: its connection slot is free again. */
  release(definition: WebSocketRouteDefinition): void;
}

const logger = new Logger('WebSocketRoutes');
const RESOLVED: Promise<void> = Promise.resolve();

/** The deadline's callback: one function for all upgrades, what it needs passed as the timer's arguments. */
function refuseUndecided(request: IncomingMessage, socket: Duplex, timeout: number): void {
  refuseUpgrade(request, socket, 503, `Upgrade not decided within ${timeout} ms (handshakeTimeout): a guard, interceptor or pipe took too long`);
}

export class TakenUpgrade implements AcceptHooks, UpgradeOutcome, SessionLease {
  private definition: WebSocketRouteDefinition | undefined;
  private session: BaseWebSocketSession | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private accepted = false;
  private ended = false;
  /** `over`, made when first asked for: only shutdown asks. */
  private overPromise: Promise<void> | undefined;
  private resolveOver: (() => void) | undefined;

  constructor(private readonly ledger: UpgradeLedger) {}

  /** The route is known and its slot counted: from now on the upgrade holds it until `done`. */
  begin(definition: WebSocketRouteDefinition, session: BaseWebSocketSession): void {
    this.definition = definition;
    this.session = session;
  }

  /**
   * After the route's synchronous part: one still deciding (guards, interceptors, pipes, a REQUEST-scoped
   * controller loading) gets 503 unless it decides within handshakeTimeout, so that one that hangs cannot
   * hold the socket forever; accept() then finds it ended. Its slot stays taken until the route settles,
   * so that hung guards cannot pile up past maxConnections. A route that decided at once gets no timer.
   */
  armDeadline(request: IncomingMessage, socket: Duplex): void {
    if (this.accepted || this.ended || this.definition === undefined) return;
    const timeout = this.definition.handshakeTimeout;
    this.deadline = setTimeout(refuseUndecided, timeout, request, socket, timeout);
    this.deadline.unref();
  }

  /** Shutdown may have begun while the route's guards were deciding. */
  admit(): boolean {
    return this.ledger.isAccepting();
  }

  onAccept(session: BaseWebSocketSession): void {
    clearTimeout(this.deadline);
    this.deadline = undefined; // not kept for the session's life
    this.accepted = true;
    this.ledger.sessions.track(session, this);
  }

  done(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.deadline);
    this.deadline = undefined;
    if (this.definition !== undefined) this.ledger.release(this.definition);
    if (this.accepted && this.session !== undefined) this.ledger.sessions.untrack(this.session);
    this.resolveOver?.();
    this.resolveOver = undefined;
  }

  failed(error: unknown): void {
    const path = this.session?.call.path ?? '?';
    if (this.ended) {
      // Nothing left to release or drop, but a bug all the same.
      logger.error(`Session on ${path} failed after it ended: ${String(error)}`, (error as Error)?.stack);
      return;
    }
    try {
      logger.error(`Session on ${path} failed: ${String(error)}`, (error as Error)?.stack);
      this.session?.terminate();
    } finally {
      this.done();
    }
  }

  /** Settles once the route is done with the upgrade: refused, or the session over. */
  get over(): Promise<void> {
    return (this.overPromise ??= this.ended ? RESOLVED : new Promise((resolve) => (this.resolveOver = resolve)));
  }
}
