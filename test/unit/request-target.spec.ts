/**
 * parseRequestTarget and parseQuery: the path and query of an upgrade's
 * request target must be exactly what the WHATWG URL parser gives
 * (`new URL(target, 'http://localhost')`), whether the target took the
 * hand-split fast path or went through URL. Named cases carry expected
 * values written out by hand; the property compares with URL itself, and
 * builds the expected query from `url.searchParams` without parseQuery.
 */
import type { IncomingMessage } from 'node:http';
import * as fc from 'fast-check';
import { parseQuery, parseRequestTarget } from '../../lib/upgrade/request-target.js';

const RUNS = 3000;

/** What Node's HTTP server hands the `upgrade` listener, as far as parseRequestTarget looks. */
const requestWith = (url: string | undefined) => ({ url }) as IncomingMessage;

/** The target's path and parsed query, as the library reads them. */
function read(target: string | undefined) {
  const parsed = parseRequestTarget(requestWith(target));
  return parsed === undefined ? undefined : { pathname: parsed.pathname, query: parseQuery(parsed.search) };
}

/** The WHATWG reading, built here from URL and URLSearchParams alone; undefined when URL throws. */
function whatwg(target: string) {
  let url: URL;
  try {
    url = new URL(target, 'http://localhost');
  } catch {
    return undefined;
  }
  const query: Record<string, string | string[]> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(name);
    Object.defineProperty(query, name, { value: values.length === 1 ? values[0] : values, enumerable: true, writable: true, configurable: true });
  }
  return { pathname: url.pathname, query };
}

describe('parseRequestTarget: named cases', () => {
  it.each<[string, string | undefined, string, string]>([
    ['a plain path', '/chat', '/chat', ''],
    ['the root', '/', '/', ''],
    ['no url at all (read as /)', undefined, '/', ''],
    ['a plain path with a query', '/chat/rooms/lobby?name=ann', '/chat/rooms/lobby', 'name=ann'],
    ['an empty query (/?)', '/?', '/', ''],
    ['a path ending in ?', '/chat?', '/chat', ''],
    ['a ? inside the query', '/a??b', '/a', '?b'],
    ['//host/x: an authority, not a path', '//host/x', '/x', ''],
    ['//host alone', '//host', '/', ''],
    ['dot-dot segment /a/../b', '/a/../b', '/b', ''],
    ['dot segment /a/./b', '/a/./b', '/a/b', ''],
    ['trailing dot-dot', '/a/..', '/', ''],
    ['dot-dot above the root', '/../a', '/a', ''],
    ['trailing dot', '/a/.', '/a/', ''],
    ['dot-dot before a query', '/base/x/../route?a=1', '/base/route', 'a=1'],
    ['%2e%2e as dot-dot', '/a/%2e%2e/b', '/b', ''],
    ['%2E%2E as dot-dot', '/a/%2E%2E/b', '/b', ''],
    ['.%2e as dot-dot', '/a/.%2e/b', '/b', ''],
    ['%2e as dot', '/a/%2e/b', '/a/b', ''],
    ['dots that are not segments', '/a/.hidden/..b/c..', '/a/.hidden/..b/c..', ''],
    ['other percent-encoding kept as is', '/a%20b/%41%zz', '/a%20b/%41%zz', ''],
    ['a backslash as a slash', '/a\\b', '/a/b', ''],
    ['backslash dot-dot segments', '/a\\..\\b', '/b', ''],
    ['/\\host/x: an authority too', '/\\host/x', '/x', ''],
    ['a fragment', '/a#frag', '/a', ''],
    ['a fragment after a query', '/a?x=1#frag', '/a', 'x=1'],
    ['a ? inside the fragment', '/a#?x=1', '/a', ''],
    ['an absolute-form target', 'http://example.com/p/../q?x=1', '/q', 'x=1'],
    // Node's HTTP parser hands bytes over 0x7f on as latin1 characters: é sent as UTF-8 arrives as 'Ã©'.
    ['non-ASCII (latin1 from the HTTP parser) in the path and query', '/caf\u00c3\u00a9?q=\u00c3\u00a9', '/caf%C3%83%C2%A9', 'q=%C3%83%C2%A9'],
    ['a single latin1 character', '/\u00e9', '/%C3%A9', ''],
  ])('%s: %j', (_name, target, pathname, search) => {
    expect(parseRequestTarget(requestWith(target))).toEqual({ pathname, search });
  });

  it("keeps ' in the path, and reads it in the query as URL does (which percent-encodes it there)", () => {
    expect(read("/a'b?c='&d=%27")).toEqual({ pathname: "/a'b", query: { c: "'", d: "'" } });
  });

  it.each(['///', '//%zz/', '//ex%20ample/x', '//a:b/', '//[/', '//#', '//?x', '/\\[x'])(
    'is undefined for %j, which URL cannot parse',
    (target) => {
      expect(() => new URL(target, 'http://localhost')).toThrow();
      expect(parseRequestTarget(requestWith(target))).toBeUndefined();
    },
  );
});

describe('parseQuery: named cases', () => {
  it('is empty for no query', () => {
    expect(parseQuery('')).toEqual({});
  });

  it('makes repeated names arrays, in order, and leaves single ones strings', () => {
    expect(read('/a?x=1&y=z&x=2&x=3')).toEqual({ pathname: '/a', query: { x: ['1', '2', '3'], y: 'z' } });
  });

  it("reads '+' and %20 as spaces, and %2B as '+'", () => {
    expect(read('/a?x=a+b&y=a%20b&z=%2B&w=1+%2B+1')?.query).toEqual({ x: 'a b', y: 'a b', z: '+', w: '1 + 1' });
  });

  it("decodes names too ('+', %20, %3D)", () => {
    expect(read('/a?first+name=ann&last%20name=lee&a%3Db=c')?.query).toEqual({ 'first name': 'ann', 'last name': 'lee', 'a=b': 'c' });
  });

  it('keeps empty names and values, and skips empty pairs', () => {
    expect(read('/a?=v&n=&&=&flag')?.query).toEqual({ '': ['v', ''], n: '', flag: '' });
  });

  it("keeps malformed percent-escapes and decodes good ones, '.' and '?' included", () => {
    expect(read('/a?b=%&c=%zz&d=%41&e=1.5&f=?g')?.query).toEqual({ b: '%', c: '%zz', d: 'A', e: '1.5', f: '?g' });
  });

  it('decodes UTF-8 escapes, and latin1 characters from the HTTP parser as themselves', () => {
    expect(read('/a?x=%C3%A9&y=\u00c3\u00a9')?.query).toEqual({ x: '\u00e9', y: '\u00c3\u00a9' });
  });

  // URLSearchParams given a string drops one leading '?'; URL's searchParams keep a second one as part of the name.
  it("keeps a '?' that starts the query, as URL's searchParams do", () => {
    expect(read('/chat??token=abc')?.query).toEqual({ '?token': 'abc' });
  });

  // On a plain `{}`, a name that Object.prototype knows would read its member as a "previous" value
  // (`?constructor=x` giving [Object, 'x']) and `__proto__` would replace the record's prototype.
  it('reads names that Object.prototype also has (constructor, toString, __proto__) as any other', () => {
    const query = parseQuery('constructor=x&toString=1&__proto__=p&toString=2');
    expect(Object.entries(query)).toEqual([
      ['constructor', 'x'],
      ['toString', ['1', '2']],
      ['__proto__', 'p'],
    ]);
    expect(Array.isArray(Object.getPrototypeOf(query))).toBe(false);
  });
});

// ---------------------------------------------------------------------------
// Property: any target, as URL reads it.

/** Characters and tokens the fast path reads by hand. */
const PLAIN = ['a', 'b', 'z', 'A', 'Z', '0', '9', '_', '-', '~', '/', '+', '=', '&', "'", ':', '@', '!', '$', '(', ')', '*', ',', ';'];
/** What URL may read differently from the bytes: dot segments, escapes, backslashes, fragments, non-ASCII, queries. */
const TRICKY = [
  '.',
  '..',
  '/.',
  '/..',
  '%',
  '%2e',
  '%2E',
  '%20',
  '%41',
  '%zz',
  '?',
  '#',
  '\\',
  '\u00e9',
  '\u00c3',
  '\u00ff',
  '\u0080',
  ' ',
  '"',
  '[',
  '|',
];

const tokenArb = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PLAIN) }, { weight: 2, arbitrary: fc.constantFrom(...TRICKY) });
const targetArb = fc
  .tuple(fc.constantFrom('/', '/', '/', '//', '/\\', ''), fc.array(tokenArb, { maxLength: 16 }))
  .map(([start, tokens]) => start + tokens.join(''));
/** Mostly plain paths with a query of tricky characters: the query half of the fast path. */
const queryTargetArb = fc
  .tuple(fc.array(fc.constantFrom(...PLAIN.filter((c) => c !== '/')), { maxLength: 6 }), fc.array(tokenArb, { maxLength: 16 }))
  .map(([path, query]) => `/${path.join('')}?${query.join('')}`);

describe('parseRequestTarget and parseQuery: as URL reads any target', () => {
  const agreesWithUrl = (target: string) => {
    const expected = whatwg(target);
    const actual = read(target);
    if (expected === undefined) {
      expect(actual).toBeUndefined();
      return;
    }
    expect(actual).toBeDefined();
    expect(actual!.pathname).toBe(expected.pathname);
    expect(actual!.query).toEqual(expected.query);
  };

  it('gives URL’s pathname and query parameters, and undefined exactly when URL throws', () => {
    fc.assert(fc.property(targetArb, agreesWithUrl), { numRuns: RUNS });
  });

  it('does so for queries full of tricky characters', () => {
    fc.assert(fc.property(queryTargetArb, agreesWithUrl), { numRuns: RUNS });
  });

  it('does so for the named targets above too', () => {
    for (const target of ['/a/../b', '/a/./b', '/a/%2e%2e/b', '/a\\b', '/a#f', '//h/x', '/\u00e9?\u00e9=\u00e9', "/'?'='"]) {
      fc.assert(fc.property(fc.constant(target), agreesWithUrl), { numRuns: 1 });
    }
  });
});
