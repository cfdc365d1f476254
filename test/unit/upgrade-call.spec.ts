/**
 * UpgradeCall's request: an own, enumerable property whatever happens, and,
 * when a route leaves dressing it for later, dressed once, on its first
 * read, before anyone sees it; the dresser itself reads the request as it came.
 */
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { UpgradeCall } from '../../lib/upgrade/upgrade-call.js';

function callOn(request: IncomingMessage): UpgradeCall {
  return new UpgradeCall(request, { pathname: '/rooms/lobby', search: 'a=1' }, '/rooms/:room', Object.freeze({ room: 'lobby' }), undefined);
}

describe('UpgradeCall request', () => {
  it('is the request given, an own enumerable property, without a dresser', () => {
    const request = new IncomingMessage(new Socket());
    const call = callOn(request);
    expect(call.request).toBe(request);
    expect(Object.keys(call).sort()).toEqual(['headers', 'params', 'path', 'protocol', 'request', 'route']);
    expect({ ...call }.request).toBe(request);
  });

  it('is dressed once, on its first read, and not before', () => {
    const request = new IncomingMessage(new Socket());
    const call = callOn(request);
    const seen: Array<{ request: IncomingMessage; readInside: IncomingMessage; params: unknown }> = [];
    UpgradeCall.dressRequestWhenRead(call, (given, from) => {
      seen.push({ request: given, readInside: from.request, params: from.params });
      Object.assign(given, { dressed: true });
    });
    expect(seen).toEqual([]);
    expect((call.request as IncomingMessage & { dressed?: boolean }).dressed).toBe(true);
    expect(call.request).toBe(request);
    expect(seen).toHaveLength(1);
    expect(seen[0].request).toBe(request);
    expect(seen[0].readInside).toBe(request);
    expect(seen[0].params).toEqual({ room: 'lobby' });
  });

  it('is dressed by a spread of the call as well', () => {
    const request = new IncomingMessage(new Socket());
    const call = callOn(request);
    let dressings = 0;
    UpgradeCall.dressRequestWhenRead(call, () => dressings++);
    const copy = { ...call };
    expect(copy.request).toBe(request);
    expect(dressings).toBe(1);
  });
});
