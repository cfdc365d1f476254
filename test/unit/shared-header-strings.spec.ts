/**
 * shareHeaderStrings swaps a kept upgrade request's header strings for shared equal copies: what anyone
 * reads of `rawHeaders` and `headers` must not change, whatever the request holds (repeated headers that
 * Node joined or dropped, long values, names in any case). That the copies are shared shows in heap
 * snapshots (bench/heap-per-session.ts), not to JavaScript, where strings compare by content.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { shareHeaderStrings } from '../../lib/session/shared-header-strings.js';

/** Upgrade requests as Node's parser makes them, from raw request heads sent over loopback. */
class UpgradeRequests {
  private readonly server: Server = createServer();
  private readonly sockets: Socket[] = [];

  async start(): Promise<void> {
    this.server.on('upgrade', (_request, socket) => this.sockets.push(socket as Socket));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  async parse(headerLines: string[]): Promise<IncomingMessage> {
    const received = new Promise<IncomingMessage>((resolve) => this.server.once('upgrade', (request: IncomingMessage) => resolve(request)));
    const client = connect((this.server.address() as AddressInfo).port, '127.0.0.1');
    this.sockets.push(client);
    client.write(['GET /chat?room=1 HTTP/1.1', ...headerLines, '', ''].join('\r\n'));
    return received;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

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
