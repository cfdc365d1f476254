/**
 * One mapped WebSocket route: its full path compiled for matching, what the
 * handshake needs (protocol, kind of session, settings), and what takes the
 * upgrade once the handshake checks passed.
 */
import { match, parse, pathToRegexp, type MatchFunction, type Token } from 'path-to-regexp';
import type { OriginPolicy } from '../protocol/origin-policy.js';
import type { WebSocketExtensionFactory } from '../protocol/websocket-extension.js';
import type { SessionSettings } from '../session/websocket-session-options.js';
import type { PendingSession, UpgradeCandidate } from '../upgrade/websocket-upgrade.js';

export interface RouteCandidate extends UpgradeCandidate {
  readonly definition: WebSocketRouteDefinition;
}

/** How a route tells the router that it is done with an upgrade; the first call counts. */
export interface UpgradeOutcome {
  /** Refused, or the session is over. */
  done(): void;
  /** A bug: the router logs it and drops the connection. */
  failed(error: unknown): void;
}

/**
 * Takes an upgrade that passed the handshake checks: decides (guards,
 * pipes), accepts or answers an HTTP error, runs the session, and reports
 * to `outcome` once all of it is over. A throw is a bug, as `failed` is.
 */
export type RouteUpgradeHandler = (pending: PendingSession<RouteCandidate>, outcome: UpgradeOutcome) => void;

export interface WebSocketRouteDefinition {
  path: string;
  protocol: string | undefined;
  raw: boolean;
  settings: SessionSettings;
  /** Extensions the route offers (none for a raw route unless it negotiates). */
  extensions: readonly WebSocketExtensionFactory[];
  originAllowed: OriginPolicy;
  /** Sessions this route may hold at once (open or deciding); undefined: only the module's limit. */
  maxConnections: number | undefined;
  /** Milliseconds the route has to accept or refuse an upgrade before it gets 503. */
  handshakeTimeout: number;
  handle: RouteUpgradeHandler;
  /** `ControllerName.method`, for logs. */
  name: string;
}

/** The shape of a path, with parameter names left out: `/a/:x` and `/a/:y` match the same requests. */
export function pathShape(path: string): string {
  const shapeOf = (tokens: Token[]): string =>
    tokens
      .map((token) => {
        switch (token.type) {
          case 'text':
            return token.value;
          case 'param':
            return ':';
          case 'wildcard':
            return '*';
          case 'group':
            return `{${shapeOf(token.tokens)}}`;
        }
      })
      .join('');
  return shapeOf(parse(path).tokens);
}

/** How the HTTP platform matches paths, so an upgrade is taken exactly where a GET would be. */
export interface PathMatching {
  /** Letter case matters. */
  sensitive: boolean;
  /** A trailing slash is ignored. */
  trailing: boolean;
}

/** The params of every match without any: one object for all the sessions that keep it. */
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

export class MappedWebSocketRoute {
  private readonly matcher: MatchFunction<Partial<Record<string, string | string[]>>>;
  /** Set for a path without parameters: it is only tested, with nothing built per match. */
  private readonly plainPath: RegExp | undefined;
  /** What a match of a path without parameters hands over: the same for every request. */
  private readonly plainCandidate: RouteCandidate;

  constructor(
    readonly definition: WebSocketRouteDefinition,
    matching: PathMatching,
  ) {
    const { regexp, keys } = pathToRegexp(definition.path, matching);
    this.plainPath = keys.length === 0 ? regexp : undefined;
    this.matcher = match(definition.path, { decode: decodeURIComponent, ...matching });
    this.plainCandidate = this.candidate(NO_PARAMS);
  }

  /** The route's candidate for the upgrade when the path matches (its params read from the path), else undefined. */
  match(pathname: string): RouteCandidate | undefined {
    if (this.plainPath !== undefined) return this.plainPath.test(pathname) ? this.plainCandidate : undefined;
    let result;
    try {
      result = this.matcher(pathname);
    } catch {
      return undefined; // malformed percent-encoding
    }
    if (result === false) return undefined;
    let params: Record<string, string> | undefined;
    for (const [name, value] of Object.entries(result.params)) {
      if (value !== undefined) (params ??= {})[name] = Array.isArray(value) ? value.join('/') : value;
    }
    return params === undefined ? this.plainCandidate : this.candidate(Object.freeze(params));
  }

  private candidate(params: Readonly<Record<string, string>>): RouteCandidate {
    const { definition } = this;
    const { path, protocol, raw, settings, extensions, originAllowed } = definition;
    return { route: path, protocol, raw, settings, extensions, originAllowed, params, definition };
  }
}
