/**
 * The opening handshake and upgrade routing end to end: statuses and
 * headers as a client sees them, subprotocol selection, plain HTTP on
 * WebSocket paths, and upgrade paths the module does not own.
 */
import 'reflect-metadata';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { Controller, Get } from '@nestjs/common';
import { WebSocketServer } from 'ws';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { RawClient } from '../support/raw-client.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { WsClient } from '../support/ws-client.js';

/** Sends who handled the session and what it negotiated, then echoes. */
async function introduce(session: DefaultWebSocketServerSession, handler: string) {
  await session.sendSerialized({ handler, protocol: session.call.protocol ?? null, params: session.call.params });
  for await (const frame of session.incoming) await session.send(frame);
}

@Controller()
class HandshakeController {
  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession) {
    return introduce(session, 'echo');
  }

  @WebSocketRoute('chat', { protocol: 'chat.v1' })
  chat(session: DefaultWebSocketServerSession) {
    return introduce(session, 'chat');
  }

  @WebSocketRoute('dual', { protocol: 'dual.v2' })
  dualProtected(session: DefaultWebSocketServerSession) {
    return introduce(session, 'dual-protected');
  }

  @WebSocketRoute('dual')
  dualOpen(session: DefaultWebSocketServerSession) {
    return introduce(session, 'dual-open');
  }

  @Get('both')
  httpBoth() {
    return 'an HTTP answer';
  }

  @WebSocketRoute('both')
  wsBoth(session: DefaultWebSocketServerSession) {
    return introduce(session, 'both');
  }
}

@Controller('chat')
class RoomsController {
  @WebSocketRoute('rooms/:room')
  room(session: DefaultWebSocketServerSession) {
    return introduce(session, 'room');
  }
}

interface UpgradeAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  socket?: Duplex;
}

/** An upgrade request through node:http, another client than RawClient and ws. */
function upgradeWithNodeHttp(port: number, path: string, headers: Record<string, string>): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers });
    req.once('upgrade', (res: IncomingMessage, socket: Duplex) => resolve({ status: res.statusCode!, headers: res.headers, socket }));
    req.once('response', (res: IncomingMessage) => {
      res.resume();
      resolve({ status: res.statusCode!, headers: res.headers });
    });
    req.once('error', reject);
    req.end();
  });
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe.each(PLATFORMS)('on %s', (platform) => {
  describe('handshake', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([HandshakeController, RoomsController], {}, [], { platform })));
    afterAll(() => t.close());

    const open = async (path: string, headers: Record<string, string | undefined> = {}) => {
      const result = await RawClient.open(t.port, path, headers);
      cleanups.push(() => result.client.destroy());
      return result;
    };
    const connectWs = async (path: string, protocols?: string | string[]) => {
      const client = await WsClient.connect(t.url(path), protocols);
      cleanups.push(() => client.terminate());
      return client;
    };

    describe('101 Switching Protocols', () => {
      it('answers the RFC 6455 sample key with its accept value', async () => {
        const answer = await upgradeWithNodeHttp(t.port, '/echo', {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
        });
        cleanups.push(() => answer.socket?.destroy());
        expect(answer.status).toBe(101);
        // RFC 6455 §1.3.
        expect(answer.headers['sec-websocket-accept']).toBe('s3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
        expect(answer.headers.upgrade?.toLowerCase()).toBe('websocket');
        expect(answer.headers.connection?.toLowerCase()).toBe('upgrade');
        expect(answer.headers['sec-websocket-protocol']).toBeUndefined();
      });

      it('accepts "Connection: keep-alive, Upgrade" and "Upgrade: WebSocket"', async () => {
        const { client, response } = await open('/echo', { Connection: 'keep-alive, Upgrade', Upgrade: 'WebSocket' });
        expect(response.status).toBe(101);
        const hello = await client.readFrame();
        expect(JSON.parse(hello!.payload.toString()).handler).toBe('echo');
      });

      it('names the chosen subprotocol when the client offers it among others', async () => {
        const { client, response } = await open('/chat', { 'Sec-WebSocket-Protocol': 'x, chat.v1' });
        expect(response.status).toBe(101);
        expect(response.headers['sec-websocket-protocol']).toBe('chat.v1');
        const hello = await client.readFrame();
        expect(JSON.parse(hello!.payload.toString())).toMatchObject({ handler: 'chat', protocol: 'chat.v1' });
      });

      it('lets the ws client negotiate the subprotocol', async () => {
        const client = await connectWs('/chat', ['x', 'chat.v1']);
        expect(client.ws.protocol).toBe('chat.v1');
        expect(JSON.parse(await client.nextText())).toMatchObject({ handler: 'chat', protocol: 'chat.v1' });
      });
    });

    describe('refusals', () => {
      it('answers Sec-WebSocket-Version 8 with 426 and the supported version', async () => {
        const { response } = await open('/echo', { 'Sec-WebSocket-Version': '8' });
        expect(response.status).toBe(426);
        expect(response.headers['sec-websocket-version']).toBe('13');
      });

      it.each([
        ['too short', 'c2hvcnQ='],
        ['not base64 of 16 bytes', 'this is not a key at all!'],
        ['missing', undefined],
      ])('answers a %s Sec-WebSocket-Key with 400', async (_, key) => {
        const { response } = await open('/echo', { 'Sec-WebSocket-Key': key });
        expect(response.status).toBe(400);
      });

      it('answers 400 when the client offers only other subprotocols', async () => {
        const { response } = await open('/chat', { 'Sec-WebSocket-Protocol': 'other' });
        expect(response.status).toBe(400);
      });

      it('answers 400 when the client offers no subprotocol to a route that needs one', async () => {
        const { response } = await open('/chat');
        expect(response.status).toBe(400);
      });

      it('answers 404 to an upgrade on an unknown path', async () => {
        const { response } = await open('/nowhere');
        expect(response.status).toBe(404);
      });

      it('survives clients that reset the connection while being refused', async () => {
        for (let i = 0; i < 30; i++) {
          const socket = connect(t.port, '127.0.0.1');
          await once(socket, 'connect');
          socket.write(
            `GET ${i % 2 === 0 ? '/nowhere' : '/echo'} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n` +
              'Connection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
          );
          socket.on('error', () => undefined);
          socket.resetAndDestroy();
        }
        const { response } = await open('/echo');
        expect(response.status).toBe(101);
      });

      it('answers 404 to a request target no URL parser takes, and keeps serving', async () => {
        const { response } = await open('//[');
        expect(response.status).toBe(404);
        const { response: next } = await open('/echo');
        expect(next.status).toBe(101);
      });

      it('refuses a ws client on an unknown path with 404', async () => {
        await expect(WsClient.connect(t.url('/nowhere'))).rejects.toThrow('Upgrade refused with 404');
      });
    });

    describe('routing', () => {
      it('gives a client offering nothing the route without a protocol', async () => {
        const { client, response } = await open('/dual');
        expect(response.status).toBe(101);
        expect(response.headers['sec-websocket-protocol']).toBeUndefined();
        expect(JSON.parse((await client.readFrame())!.payload.toString())).toMatchObject({ handler: 'dual-open', protocol: null });
      });

      it('gives a client offering unknown protocols the route without a protocol', async () => {
        const { client, response } = await open('/dual', { 'Sec-WebSocket-Protocol': 'zzz' });
        expect(response.status).toBe(101);
        expect(response.headers['sec-websocket-protocol']).toBeUndefined();
        expect(JSON.parse((await client.readFrame())!.payload.toString())).toMatchObject({ handler: 'dual-open' });
      });

      it('gives a client offering the protocol the protected route', async () => {
        const { client, response } = await open('/dual', { 'Sec-WebSocket-Protocol': 'dual.v2' });
        expect(response.status).toBe(101);
        expect(response.headers['sec-websocket-protocol']).toBe('dual.v2');
        expect(JSON.parse((await client.readFrame())!.payload.toString())).toMatchObject({
          handler: 'dual-protected',
          protocol: 'dual.v2',
        });
      });

      it('composes the controller prefix with path params', async () => {
        const client = await connectWs('/chat/rooms/general');
        expect(JSON.parse(await client.nextText())).toEqual({ handler: 'room', protocol: null, params: { room: 'general' } });
        const { response } = await open('/rooms/general');
        expect(response.status).toBe(404);
      });
    });

    describe('plain HTTP', () => {
      it('answers a GET on a WebSocket path with 426 Upgrade Required', async () => {
        const response = await fetch(`http://127.0.0.1:${t.port}/echo`);
        expect(response.status).toBe(426);
        expect(response.headers.get('upgrade')?.toLowerCase()).toBe('websocket');
        expect(response.headers.get('sec-websocket-version')).toBe('13');
        await response.text();
      });

      it('leaves a GET to the HTTP route of the same path, and upgrades still work there', async () => {
        const response = await fetch(`http://127.0.0.1:${t.port}/both`);
        expect(response.status).toBe(200);
        expect(await response.text()).toBe('an HTTP answer');

        const client = await connectWs('/both');
        expect(JSON.parse(await client.nextText())).toMatchObject({ handler: 'both' });
      });
    });

    describe('another upgrade listener on the same server', () => {
      it('leaves unknown paths to it, and keeps serving its own', async () => {
        const server = t.app.getHttpServer() as Server;
        const wss = new WebSocketServer({ noServer: true });
        wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`other:${data.toString()}`)));
        const listener = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
          if (request.url === '/other') wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
        };
        server.on('upgrade', listener);
        cleanups.push(() => {
          server.off('upgrade', listener);
          for (const client of wss.clients) client.terminate();
          wss.close();
        });

        const other = await connectWs('/other');
        other.ws.send('hi');
        expect(await other.nextText()).toBe('other:hi');

        const ours = await connectWs('/echo');
        expect(JSON.parse(await ours.nextText())).toMatchObject({ handler: 'echo' });
      });
    });
  });
});
