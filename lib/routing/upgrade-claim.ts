/**
 * First claim on an HTTP server's `upgrade` events. Other upgrade listeners
 * (a `@nestjs/platform-ws` gateway, a `ws` server given `{ server, path }`)
 * destroy or refuse every upgrade whose path is not theirs, and Node calls
 * all listeners of an event: so the routes must see each upgrade first and
 * keep theirs from the others, whatever order the listeners were added in.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Takes the upgrade and returns true, or returns false to leave it to the server's `upgrade` listeners. */
export type UpgradeClaimant = (request: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

/**
 * Routes the server's `upgrade` events through `claimant` before its
 * listeners; `unclaimed` is added as a listener, which also makes Node emit
 * `upgrade` at all (without a listener it answers upgrades as plain requests).
 * Returns the function that undoes both.
 */
export function claimUpgrades(
  server: Server,
  claimant: UpgradeClaimant,
  unclaimed: (request: IncomingMessage, socket: Duplex, head: Buffer) => void,
): () => void {
  const ownEmit = Object.prototype.hasOwnProperty.call(server, 'emit') ? server.emit : undefined;
  const emit = server.emit;
  // Every event of the server passes here ('connection' for each socket): its arguments are passed on as they came.
  const claimingEmit = function (this: Server, ...args: unknown[]): boolean {
    if (args[0] === 'upgrade' && claimant(args[1] as IncomingMessage, args[2] as Duplex, args[3] as Buffer)) return true;
    return Reflect.apply(emit, this, args) as boolean;
  };
  server.emit = claimingEmit as Server['emit'];
  server.on('upgrade', unclaimed);
  return () => {
    server.off('upgrade', unclaimed);
    if (server.emit !== claimingEmit) return; // someone wrapped it after us: leave theirs in place
    if (ownEmit === undefined) delete (server as { emit?: unknown }).emit;
    else server.emit = ownEmit;
  };
}
