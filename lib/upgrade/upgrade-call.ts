/**
 * `session.call`: what a server session knows of the upgrade request it came
 * from. The query is parsed when first read: most handlers never look at it.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { WebSocketCall } from '../session/websocket-session.js';
import { parseQuery, type RequestTarget } from './request-target.js';

export class UpgradeCall implements WebSocketCall {
  readonly path: string;
  private readonly search: string;
  private parsedQuery: Record<string, string | string[]> | undefined;

  constructor(
    readonly request: IncomingMessage,
    target: RequestTarget,
    readonly route: string,
    readonly params: Readonly<Record<string, string>>,
    readonly protocol: string | undefined,
  ) {
    this.path = target.pathname;
    this.search = target.search;
  }

  get headers(): IncomingHttpHeaders {
    return this.request.headers;
  }

  get query(): Readonly<Record<string, string | string[]>> {
    return (this.parsedQuery ??= parseQuery(this.search));
  }
}
