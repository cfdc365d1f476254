/**
 * One mapped WebSocket route: its full path compiled for matching, what the
 * handshake needs (protocol, kind of session, settings), and the handler.
 */
import { match, type MatchFunction } from 'path-to-regexp';
import type { SessionHandler } from '../session/base-websocket-session.js';
import type { SessionSettings } from '../session/websocket-session-options.js';

export interface WebSocketRouteDefinition {
  path: string;
  protocol: string | undefined;
  raw: boolean;
  settings: SessionSettings;
  handler: SessionHandler;
  /** `ControllerName.method`, for logs. */
  name: string;
}

/** Joins path segments the way Nest does for HTTP routes: one leading slash, no trailing one. */
export function joinPaths(...segments: string[]): string {
  const joined = segments
    .map((segment) => segment.replace(/^\/+|\/+$/g, ''))
    .filter((segment) => segment.length > 0)
    .join('/');
  return '/' + joined;
}

export class MappedWebSocketRoute {
  private readonly matcher: MatchFunction<Partial<Record<string, string | string[]>>>;

  constructor(readonly definition: WebSocketRouteDefinition) {
    this.matcher = match(definition.path, { decode: decodeURIComponent });
  }

  /** The path's params when the path matches, else undefined. */
  match(pathname: string): Record<string, string> | undefined {
    let result;
    try {
      result = this.matcher(pathname);
    } catch {
      return undefined; // malformed percent-encoding
    }
    if (result === false) return undefined;
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(result.params)) {
      if (value !== undefined) params[name] = Array.isArray(value) ? value.join('/') : value;
    }
    return params;
  }
}
