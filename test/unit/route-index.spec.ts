/**
 * RouteIndex: an upgrade is matched only against the routes that can take
 * it, and gets the same candidates, in the same order, as trying every
 * route would. Named cases carry their expected routes written out; the
 * property compares with trying every route in order (route.match, one by one).
 */
import * as fc from 'fast-check';
import { MappedWebSocketRoute, type PathMatching, type WebSocketRouteDefinition } from '../../lib/routing/mapped-websocket-route.js';
import { RouteIndex } from '../../lib/routing/route-index.js';

function route(path: string, matching: PathMatching, protocol?: string): MappedWebSocketRoute {
  const definition = { path, protocol, name: `${path} ${protocol ?? ''}`.trim() } as WebSocketRouteDefinition;
  return new MappedWebSocketRoute(definition, matching);
}

const INSENSITIVE: PathMatching = { sensitive: false, trailing: true };
const SENSITIVE: PathMatching = { sensitive: true, trailing: false };

const PATHS = ['/chat/lobby', '/chat/rooms/:room', '/secure/echo', '/secure/feeds/:feed', '/:anything/echo', '/sec:x', '/', '/a{/b}'];

function namesAt(index: RouteIndex, pathname: string): string[] {
  return index.candidatesAt(pathname).map((candidate) => candidate.definition.name);
}

describe('RouteIndex', () => {
  const insensitive = new RouteIndex(
    PATHS.map((path) => route(path, INSENSITIVE)),
    INSENSITIVE,
  );

  it('finds the routes of a first segment, and those whose first segment has a parameter, in their order', () => {
    expect(namesAt(insensitive, '/secure/echo')).toEqual(['/secure/echo', '/:anything/echo']);
    expect(namesAt(insensitive, '/chat/rooms/lobby')).toEqual(['/chat/rooms/:room']);
    expect(namesAt(insensitive, '/chat/echo')).toEqual(['/:anything/echo']);
    expect(namesAt(insensitive, '/other/echo')).toEqual(['/:anything/echo']);
    expect(namesAt(insensitive, '/secure')).toEqual(['/sec:x']);
    expect(namesAt(insensitive, '/')).toEqual(['/']);
    expect(namesAt(insensitive, '/a/b')).toEqual(['/a{/b}']);
    expect(namesAt(insensitive, '/a')).toEqual(['/a{/b}']);
    expect(namesAt(insensitive, '/nothing/here')).toEqual([]);
  });

  it('compares the first segment as the platform compares paths: in any case, or exactly', () => {
    expect(namesAt(insensitive, '/SECURE/Echo')).toEqual(['/secure/echo', '/:anything/echo']);
    expect(namesAt(insensitive, '/secure/echo/')).toEqual(['/secure/echo', '/:anything/echo']);
    const sensitive = new RouteIndex(
      PATHS.map((path) => route(path, SENSITIVE)),
      SENSITIVE,
    );
    expect(namesAt(sensitive, '/SECURE/echo')).toEqual(['/:anything/echo']);
    expect(namesAt(sensitive, '/secure/echo')).toEqual(['/secure/echo', '/:anything/echo']);
  });

  it('keeps every route of one path, one per subprotocol, in their order', () => {
    const index = new RouteIndex(
      [route('/chat', INSENSITIVE, 'b'), route('/chat', INSENSITIVE, 'a'), route('/news', INSENSITIVE)],
      INSENSITIVE,
    );
    expect(namesAt(index, '/chat')).toEqual(['/chat b', '/chat a']);
  });

  it('gives what trying every route in order gives', () => {
    const segment = fc.constantFrom('chat', 'Chat', 'secure', 'sec', 'a', 'b', 'x', '');
    const pathname = fc.array(segment, { minLength: 1, maxLength: 4 }).chain((segments) =>
      fc.boolean().map((trailingSlash) => `/${segments.join('/')}${trailingSlash ? '/' : ''}`),
    );
    const routePath = fc.constantFrom(...PATHS, '/Chat/:x', '/x/*rest', '/{a}/b', '/b', '/:p');
    fc.assert(
      fc.property(fc.array(routePath, { minLength: 1, maxLength: 8 }), fc.boolean(), fc.boolean(), pathname, (paths, sensitive, trailing, path) => {
        const matching = { sensitive, trailing };
        const routes = paths.map((routePathText) => route(routePathText, matching));
        const everyRoute = routes.map((each) => each.match(path)).filter((candidate) => candidate !== undefined);
        const indexed = new RouteIndex(routes, matching).candidatesAt(path);
        expect(indexed.map((candidate) => candidate.definition)).toEqual(everyRoute.map((candidate) => candidate.definition));
      }),
      { numRuns: 2000 },
    );
  });
});
