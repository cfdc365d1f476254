/**
 * shareHeaderStrings swaps a kept upgrade request's header strings for shared equal copies: what anyone
 * reads of `rawHeaders` and `headers` must not change, whatever the request holds (repeated headers that
 * Node joined or dropped, long values, names in any case). That the copies are shared shows in heap
 * snapshots (here, of a child process, and in bench/heap-per-session.ts), not to JavaScript, where strings compare by content.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { shareHeaderStrings } from '../../lib/upgrade/shared-header-strings.js';
import { UpgradeRequests } from '../fixtures/upgrade-requests.js';
import { REPOSITORY, requireBuilt } from '../support/server-process.js';

const HEAD = [
  'Host: 127.0.0.1:9000',
  'Connection: Upgrade',
  'upgrade: websocket',
  'Sec-WebSocket-Version: 13',
  'SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==',
  'Origin: http://one.example',
  'Origin: http://two.example',
  'Accept-Language: en',
  'Accept-Language: fr',
  `User-Agent: ${'x'.repeat(300)}`,
  'X-Custom: a value',
];

describe('shareHeaderStrings', () => {
  const requests = new UpgradeRequests();
  beforeAll(() => requests.start());
  afterAll(() => requests.stop());

  it('leaves rawHeaders and headers as they were, repeated and joined headers included, request after request', async () => {
    for (let n = 0; n < 3; n++) {
      const request = await requests.parse(HEAD);
      const rawBefore = [...request.rawHeaders];
      const headersBefore = { ...request.headers };
      shareHeaderStrings(request);
      expect(request.rawHeaders).toEqual(rawBefore);
      expect(request.headers).toEqual(headersBefore);
      // What Node made of the repeated headers, written out: a test of the setup as much as of the swap.
      expect(request.headers).toMatchObject({
        host: '127.0.0.1:9000',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'accept-language': 'en, fr',
      });
      expect(request.rawHeaders.slice(0, 4)).toEqual(['Host', '127.0.0.1:9000', 'Connection', 'Upgrade']);
    }
  });

  it('works on a request whose headers object was never read', async () => {
    const request = await requests.parse(['Host: 127.0.0.1:9000', 'Connection: Upgrade', 'Upgrade: websocket']);
    const rawBefore = [...request.rawHeaders];
    shareHeaderStrings(request);
    expect(request.rawHeaders).toEqual(rawBefore);
    expect(request.headers).toEqual({ host: '127.0.0.1:9000', connection: 'Upgrade', upgrade: 'websocket' });
  });
});


describe('shareHeaderStrings in the heap', () => {
  it('keeps one copy of a repeating value for 20 kept requests, and no header name longer than 64 characters', () => {
    // A child process of its own: a small heap, whose snapshot takes a moment (a Jest worker's takes a minute).
    requireBuilt([
      { sources: 'lib/upgrade', output: 'dist/upgrade' },
      { sources: 'test/fixtures', output: 'build/test/fixtures' },
    ]);
    const module = pathToFileURL(join(REPOSITORY, 'dist/upgrade/shared-header-strings.js')).href;
    const fixture = join(REPOSITORY, 'build/test/fixtures/header-strings-heap.js');
    const output = JSON.parse(execFileSync(process.execPath, ['--expose-gc', fixture, module], { encoding: 'utf8' })) as Record<string, number>;
    // Each request came with its own copy of its User-Agent: one shared copy is left.
    expect(output).toMatchObject({ requests: 20, userAgentCopies: 1 });
    // Long names go into no table: 200 of 8 000 characters each (1.6 MB) leave nothing behind once their requests are gone.
    expect(output.longNameBytesKept).toBeLessThan(400_000);
  });
});
