/**
 * `session.call`: what a server session knows of the upgrade request it came
 * from. The query is parsed when first read (a getter): most handlers never
 * look at it. The request may be made the platform's own (Express's `req`)
 * on its first read too: most handlers never look at that either.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { WebSocketCall } from '../session/websocket-session.js';
import { parseQuery, type RequestTarget } from './request-target.js';

/** Makes an upgrade request the platform's own (UpgradeExchanges.dressRequest). */
export type RequestDresser = (request: IncomingMessage, call: UpgradeCall) => void;

/**
 * `request` is an own, enumerable property, as a field would be (a spread or Object.keys of
 * `session.call` shows it), read through this getter; one descriptor for all calls, so they share a hidden class.
 */
const REQUEST_PROPERTY: PropertyDescriptor = {
  get(this: UpgradeCall): IncomingMessage {
    return UpgradeCall.requestOf(this);
  },
  enumerable: true,
};

export class UpgradeCall implements WebSocketCall {
  declare readonly request: IncomingMessage;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  // Private (#) fields: a spread or Object.keys of `session.call` shows its public names only.
  readonly #request: IncomingMessage;
  readonly #search: string;
  #query: Record<string, string | string[]> | undefined;
  /** Set until the request is first read, when it is dressed (dressRequestWhenRead). */
  #dress: RequestDresser | undefined;

  constructor(
    request: IncomingMessage,
    target: RequestTarget,
    readonly route: string,
    readonly params: Readonly<Record<string, string>>,
    readonly protocol: string | undefined,
  ) {
    Object.defineProperty(this, 'request', REQUEST_PROPERTY);
    this.#request = request;
    this.path = target.pathname;
    this.headers = request.headers;
    this.#search = target.search;
  }

  get query(): Readonly<Record<string, string | string[]>> {
    return (this.#query ??= parseQuery(this.#search));
  }

  /** The request, dressed first if that was left for its first read. */
  static requestOf(call: UpgradeCall): IncomingMessage {
    const dress = call.#dress;
    if (dress !== undefined) {
      // Cleared first: the dresser may read `call.request` itself.
      call.#dress = undefined;
      dress(call.#request, call);
    }
    return call.#request;
  }

  /**
   * Leaves dressing the request to its first read through `call.request`, for a route where nothing
   * needs it before the session runs: a handler that never reads it never pays for it.
   */
  static dressRequestWhenRead(call: UpgradeCall, dress: RequestDresser): void {
    call.#dress = dress;
  }
}
