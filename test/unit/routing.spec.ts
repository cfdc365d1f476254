import { createServer, type IncomingMessage, type Server } from 'node:http';
import { Duplex } from 'node:stream';
import { pathShape } from '../../lib/routing/mapped-websocket-route.js';
import { claimUpgrades } from '../../lib/routing/upgrade-claim.js';

describe('pathShape', () => {
  it('leaves parameter names out, so routes that take the same requests compare equal', () => {
    expect(pathShape('/a/:x')).toBe(pathShape('/a/:y'));
    expect(pathShape('/a/*rest')).toBe(pathShape('/a/*other'));
    expect(pathShape('/a{/:x}')).toBe(pathShape('/a{/:y}'));
  });

  it('keeps what tells routes apart', () => {
    expect(pathShape('/a/:x')).not.toBe(pathShape('/b/:x'));
    expect(pathShape('/a/:x')).not.toBe(pathShape('/a/x'));
    expect(pathShape('/a/:x')).not.toBe(pathShape('/a/*x'));
    expect(pathShape('/a{/:x}')).not.toBe(pathShape('/a/:x'));
  });
});

describe('claimUpgrades', () => {
  const upgrade = (server: Server, url: string) => {
    const request = { url } as IncomingMessage;
    return server.emit('upgrade', request, new Duplex(), Buffer.alloc(0));
  };

  it('lets the claimant take its upgrades before any listener, and passes the others on', () => {
    const server = createServer();
    const seen: string[] = [];
    server.on('upgrade', (request: IncomingMessage) => seen.push(`earlier listener: ${request.url}`));
    const release = claimUpgrades(
      server,
      (request) => {
        seen.push(`claimant: ${request.url}`);
        return request.url === '/mine';
      },
      (request) => seen.push(`unclaimed: ${request.url}`),
    );
    server.on('upgrade', (request: IncomingMessage) => seen.push(`later listener: ${request.url}`));

    upgrade(server, '/mine');
    upgrade(server, '/theirs');
    expect(seen).toEqual([
      'claimant: /mine',
      'claimant: /theirs',
      'earlier listener: /theirs',
      'unclaimed: /theirs',
      'later listener: /theirs',
    ]);

    seen.length = 0;
    release();
    upgrade(server, '/mine');
    expect(seen).toEqual(['earlier listener: /mine', 'later listener: /mine']);
    expect(Object.prototype.hasOwnProperty.call(server, 'emit')).toBe(false);
  });

  it('passes other events through untouched', () => {
    const server = createServer();
    const release = claimUpgrades(server, () => true, () => undefined);
    const seen: unknown[] = [];
    server.on('custom', (...args: unknown[]) => seen.push(args));
    expect(server.emit('custom', 1, 2)).toBe(true);
    expect(seen).toEqual([[1, 2]]);
    release();
  });

  it('leaves a wrapper added after it in place when released', () => {
    const server = createServer();
    const release = claimUpgrades(server, () => false, () => undefined);
    const wrapped = server.emit;
    const theirs = function (this: Server, ...args: Parameters<Server['emit']>) {
      return wrapped.apply(this, args);
    } as Server['emit'];
    server.emit = theirs;
    release();
    expect(server.emit).toBe(theirs);
    expect(server.listenerCount('upgrade')).toBe(0);
  });
});
