/**
 * The path and query of an upgrade's request target, as the WHATWG URL
 * parser reads them. Most targets are plain (`/chat/rooms/lobby?name=ann`)
 * and read as they are, without building a URL; any other goes through
 * `URL`, which resolves dot segments, backslashes and percent-encoding.
 */
import type { IncomingMessage } from 'node:http';

export interface RequestTarget {
  readonly pathname: string;
  /** The query string, without its `?`; '' when there is none. */
  readonly search: string;
}

/**
 * Targets whose path `URL` leaves unchanged: one leading slash (two would make a host), no dot (segments),
 * no percent (`%2e` is a dot segment too), no backslash, '#' or non-ASCII. The query adds '?', '%' and '.';
 * `URL` would percent-encode a `'` in it, which parseQuery decodes either way.
 */
const PLAIN_TARGET = /^\/(?!\/)[\w\-~!$&'()*+,;=:@/]*(?:\?[\w\-~!$&'()*+,;=:@/?%.]*)?$/;

/** The request target's path and query, or undefined when it cannot be parsed (the HTTP parser lets odd ones through). */
export function parseRequestTarget(request: IncomingMessage): RequestTarget | undefined {
  const target = request.url ?? '/';
  if (PLAIN_TARGET.test(target)) {
    const query = target.indexOf('?');
    return query === -1 ? { pathname: target, search: '' } : { pathname: target.slice(0, query), search: target.slice(query + 1) };
  }
  try {
    const url = new URL(target, 'http://localhost');
    return { pathname: url.pathname, search: url.search.slice(1) };
  } catch {
    return undefined;
  }
}

/**
 * The query string's parameters; a repeated name gets an array of its values, in order. The record has no
 * prototype (as Node's querystring.parse), so names such as `constructor` or `__proto__` are names like any other.
 */
export function parseQuery(search: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null);
  if (search === '') return query;
  // URLSearchParams drops one leading '?': given back, so that a query starting with '?' keeps it, as URL's does.
  for (const [name, value] of new URLSearchParams('?' + search)) {
    const previous = query[name];
    query[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return query;
}
