/**
 * The mapped routes by the first segment of their path (`chat` for
 * `/chat/rooms/:room`), so that an upgrade is matched against the routes
 * that can take it rather than against every route of the application:
 * each regular expression tried costs about 70 ns. Each list keeps the
 * routes' order, which decides among candidates of one path.
 */
import { parse } from 'path-to-regexp';
import type { MappedWebSocketRoute, PathMatching, RouteCandidate } from './mapped-websocket-route.js';

/** What an upgrade no route matches gets. */
const NO_CANDIDATES: readonly RouteCandidate[] = Object.freeze([]);

/** ASCII only: request paths are (URL percent-encodes the rest), and there lower case is what a case-insensitive match compares. */
const PLAIN_SEGMENT = /^[\x20-\x7e]*$/;

/**
 * The literal first segment of a route's path, or undefined when a parameter, wildcard or group may
 * take part in it (`/:id`, `/sec:x`, `/a{/b}`): such routes are tried on every upgrade.
 */
function firstSegmentOf(path: string): string | undefined {
  const tokens = parse(path).tokens;
  const first = tokens[0];
  if (first?.type !== 'text' || !first.value.startsWith('/')) return undefined;
  const end = first.value.indexOf('/', 1);
  if (end === -1 && tokens.length > 1) return undefined;
  const segment = end === -1 ? first.value.slice(1) : first.value.slice(1, end);
  return PLAIN_SEGMENT.test(segment) ? segment : undefined;
}

export class RouteIndex {
  /** By first segment: the routes with it and those tried everywhere, in the routes' order. */
  private readonly bySegment = new Map<string, readonly MappedWebSocketRoute[]>();
  /** The routes tried on every upgrade, alone: for a first segment no route has. */
  private readonly everywhere: readonly MappedWebSocketRoute[];

  constructor(
    routes: readonly MappedWebSocketRoute[],
    private readonly matching: PathMatching,
  ) {
    const segments = routes.map((route) => {
      const segment = firstSegmentOf(route.definition.path);
      return segment === undefined || matching.sensitive ? segment : segment.toLowerCase();
    });
    this.everywhere = routes.filter((_, index) => segments[index] === undefined);
    for (const segment of new Set(segments)) {
      if (segment === undefined) continue;
      this.bySegment.set(
        segment,
        routes.filter((_, index) => segments[index] === segment || segments[index] === undefined),
      );
    }
  }

  /** The candidates of the routes whose path matches, in the routes' order; usually one, in an array of one. */
  candidatesAt(pathname: string): readonly RouteCandidate[] {
    let candidates: RouteCandidate[] | undefined;
    const routes = this.routesFor(pathname);
    // Indexed, not for-of: on every handshake, and V8 does not always optimize the iterator away.
    for (let index = 0; index < routes.length; index++) {
      const candidate = routes[index].match(pathname);
      if (candidate === undefined) continue;
      if (candidates === undefined) candidates = [candidate];
      else candidates.push(candidate);
    }
    return candidates ?? NO_CANDIDATES;
  }

  private routesFor(pathname: string): readonly MappedWebSocketRoute[] {
    const end = pathname.indexOf('/', 1);
    const segment = end === -1 ? pathname.slice(1) : pathname.slice(1, end);
    // Looked up as it came first: a segment in lower case already needs no lower-cased copy.
    const routes = this.bySegment.get(segment);
    if (routes !== undefined || this.matching.sensitive) return routes ?? this.everywhere;
    return this.bySegment.get(segment.toLowerCase()) ?? this.everywhere;
  }
}
