/**
 * `session.call`: what a server session knows of the upgrade request it came
 * from. The query is parsed when first read (a getter): most handlers never
 * look at it.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { WebSocketCall } from '../session/websocket-session.js';
import { parseQuery, type RequestTarget } from './request-target.js';

export class UpgradeCall implements WebSocketCall {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  // Private (#) fields: a spread or Object.keys of `session.call` shows its public names only.
  readonly #search: string;
  #query: Record<string, string | string[]> | undefined;

  constructor(
    readonly request: IncomingMessage,
    target: RequestTarget,
    readonly route: string,
    readonly params: Readonly<Record<string, string>>,
    readonly protocol: string | undefined,
  ) {
    this.path = target.pathname;
    this.headers = request.headers;
    this.#search = target.search;
  }

  get query(): Readonly<Record<string, string | string[]>> {
    return (this.#query ??= parseQuery(this.#search));
  }
}
