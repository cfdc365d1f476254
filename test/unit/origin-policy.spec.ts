import { originPolicy } from '../../lib/protocol/origin-policy.js';

describe('originPolicy without a list: same origin', () => {
  const allowed = originPolicy();

  it('lets requests without Origin through: they do not come from a browser page', () => {
    expect(allowed(undefined, 'example.com')).toBe(true);
  });

  it.each([
    ['http://example.com', 'example.com'],
    ['https://example.com', 'example.com'],
    ['http://example.com:8080', 'example.com:8080'],
    ['http://EXAMPLE.com', 'example.COM'],
    ['http://example.com', 'example.com:80'],
    ['https://example.com', 'example.com:443'],
    ['http://127.0.0.1:3000', '127.0.0.1:3000'],
  ])('takes %s on Host %s', (origin, host) => {
    expect(allowed(origin, host)).toBe(true);
  });

  it.each([
    ['http://evil.example', 'example.com'],
    ['http://example.com:8080', 'example.com:8081'],
    ['http://example.com', 'example.com:8080'],
    ['https://example.com', 'example.com:80'],
    ['http://example.com.evil.net', 'example.com'],
    ['null', 'example.com'],
    ['file://example.com', 'example.com'],
    ['http://example.com', undefined],
    ['not an origin', 'example.com'],
    ['http://[::1', 'example.com'],
  ])('refuses %s on Host %s', (origin, host) => {
    expect(allowed(origin, host)).toBe(false);
  });
});

describe('originPolicy with a list', () => {
  it('takes exact origins, ignoring letter case, and nothing else', () => {
    const allowed = originPolicy(['https://app.example.com', 'http://localhost:3000']);
    expect(allowed('https://app.example.com', 'api.example.com')).toBe(true);
    expect(allowed('HTTPS://APP.EXAMPLE.COM', 'api.example.com')).toBe(true);
    expect(allowed('http://localhost:3000', 'x')).toBe(true);
    expect(allowed('http://app.example.com', 'x')).toBe(false);
    expect(allowed('https://app.example.com:8443', 'x')).toBe(false);
    expect(allowed('http://localhost:3001', 'x')).toBe(false);
    // The list replaces same-origin: the server's own origin needs listing too.
    expect(allowed('https://api.example.com', 'api.example.com')).toBe(false);
  });

  it('lets requests without Origin through', () => {
    expect(originPolicy(['https://app.example.com'])(undefined, 'x')).toBe(true);
    expect(originPolicy([])(undefined, 'x')).toBe(true);
    expect(originPolicy([])('https://app.example.com', 'x')).toBe(false);
  });

  it('reads * in a pattern as one or more host labels', () => {
    const allowed = originPolicy(['https://*.example.com']);
    expect(allowed('https://a.example.com', 'x')).toBe(true);
    expect(allowed('https://a.b.example.com', 'x')).toBe(true);
    expect(allowed('https://example.com', 'x')).toBe(false);
    expect(allowed('https://evil-example.com', 'x')).toBe(false);
    expect(allowed('https://a.example.com.evil.net', 'x')).toBe(false);
    expect(allowed('http://a.example.com', 'x')).toBe(false);
    expect(allowed('https://a.example.com:8443', 'x')).toBe(false);
  });

  it("takes any origin for '*', and the null origin only when 'null' is listed", () => {
    expect(originPolicy(['*'])('https://anything.test', 'x')).toBe(true);
    expect(originPolicy(['https://a.test'])('null', 'x')).toBe(false);
    expect(originPolicy(['null'])('null', 'x')).toBe(true);
  });

  it('tests a RegExp against the whole Origin, the same way every time (no lastIndex state)', () => {
    const allowed = originPolicy([/^https:\/\/(app|admin)\.example\.com$/g]);
    for (let i = 0; i < 3; i++) {
      expect(allowed('https://app.example.com', 'x')).toBe(true);
      expect(allowed('https://admin.example.com', 'x')).toBe(true);
    }
    expect(allowed('https://other.example.com', 'x')).toBe(false);
  });

  it.each([['example.com'], ['https://example.com/path'], [''], ['*.example.com']])('refuses the entry %p, naming it', (entry) => {
    expect(() => originPolicy([entry])).toThrow(new RegExp(`allowedOrigins.*${entry.replace(/[.*/]/g, '\\$&')}`));
  });

  it('refuses entries that are not strings or RegExps, and a list that is not an array', () => {
    expect(() => originPolicy([42 as unknown as string])).toThrow(TypeError);
    expect(() => originPolicy('https://a.test' as unknown as string[])).toThrow(/must be an array/);
  });
});
