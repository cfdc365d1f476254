/**
 * Every refusal of an upgrade answers as Nest answers an HTTP error (and as a
 * guard's refusal does): JSON `{ message, error, statusCode }` with its
 * Content-Type and a true Content-Length, `Connection: close`, and the headers
 * the refusal needs. On Express and Fastify, and through WebSocketUpgrade.
 */
import 'reflect-metadata';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Controller, UseGuards, type CanActivate } from '@nestjs/common';
import {
  WebSocketRoute,
  WebSocketUpgrade,
  type DefaultWebSocketServerSession,
  type WebSocketExtensionFactory,
} from 'nest-websocket-routes';
import { deferred, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { RawClient } from '../support/raw-client.js';

/** Released after each test: what holds a session open or keeps a guard deciding. */
let hold = deferred();
const clients = new ClientTracker();
afterEach(() => {
  hold.resolve();
  hold = deferred();
  clients.dropAll();
});

const hangingGuard: CanActivate = { canActivate: () => hold.promise.then(() => false) };

/** An extension whose negotiate() has a bug: the upgrade fails before the 101. */
const throwingExtension: WebSocketExtensionFactory = {
  name: 'x-throw',
  rsv1: false,
  rsv2: false,
  rsv3: false,
  config: undefined,
  negotiate() {
    throw new Error('x-throw cannot negotiate');
  },
};

@Controller()
class RefusalsController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('chat', { protocol: 'chat.v1' })
  async chat(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('held', { maxConnections: 1 })
  held() {
    return hold.promise;
  }

  @WebSocketRoute('hung', { handshakeTimeout: 100 })
  @UseGuards(hangingGuard)
  hung() {}

  @WebSocketRoute('broken', { extensions: [throwingExtension] })
  broken() {}
}

interface Answer {
  statusLine: string;
  headers: Record<string, string>;
  body: Buffer;
}

/** Sends `head` (an HTTP request without body) over raw TCP and reads the answer until the server ends the connection. */
async function answerTo(port: number, head: string): Promise<Answer> {
  const socket: Socket = connect(port, '127.0.0.1');
  clients.track(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    socket.once('close', () => resolve());
    socket.once('error', reject);
  });
  socket.write(head);
  await within(ended, 5000, 'the server to answer and end the connection');
  const all = Buffer.concat(chunks);
  const end = all.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const [statusLine, ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { statusLine, headers, body: all.subarray(end + 4) };
}

function upgradeRequest(port: number, path: string, headers: Record<string, string | undefined> = {}, method = 'GET'): string {
  const all: Record<string, string | undefined> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
    ...headers,
  };
  const lines = [`${method} ${path} HTTP/1.1`];
  for (const [name, value] of Object.entries(all)) if (value !== undefined) lines.push(`${name}: ${value}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/** The whole refusal: status line, JSON headers, a Content-Length that counts the body's bytes, and Nest's body. */
function expectJsonRefusal(answer: Answer, status: number, reason: string, message: string): void {
  expect(answer.statusLine).toBe(`HTTP/1.1 ${status} ${reason}`);
  expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
  expect(answer.headers['connection']).toBe('close');
  expect(Number(answer.headers['content-length'])).toBe(answer.body.length);
  expect(JSON.parse(answer.body.toString('utf8'))).toEqual({ message, error: reason, statusCode: status });
}

describe.each(PLATFORMS)('on %s', (platform) => {
  let t: TestApp;
  beforeAll(async () => (t = await startApp([RefusalsController], {}, [], { platform })));
  afterAll(() => t.close());

  const refusalOf = (path: string, headers?: Record<string, string | undefined>, method?: string) =>
    answerTo(t.port, upgradeRequest(t.port, path, headers, method));

  it('404: an upgrade on a path with no route, when no other upgrade listener is there', async () => {
    expectJsonRefusal(await refusalOf('/nowhere?x=1'), 404, 'Not Found', 'No WebSocket route at /nowhere');
  });

  it.each([
    ['a malformed Sec-WebSocket-Key', { 'Sec-WebSocket-Key': 'c2hvcnQ=' }, 'Missing or malformed Sec-WebSocket-Key'],
    ['an Upgrade header without websocket', { Upgrade: 'h2c' }, 'Upgrade header does not offer websocket'],
    ['subprotocols that are not tokens', { 'Sec-WebSocket-Protocol': 'a b' }, 'Sec-WebSocket-Protocol has "a b", which is not a token'],
  ])('400: %s', async (_, headers, message) => {
    expectJsonRefusal(await refusalOf('/echo', headers), 400, 'Bad Request', message);
  });

  it('400: no route on the path takes the offered subprotocols, and the body says which it takes', async () => {
    expectJsonRefusal(
      await refusalOf('/chat', { 'Sec-WebSocket-Protocol': 'chat.v0' }),
      400,
      'Bad Request',
      'Unsupported subprotocol: this path accepts chat.v1; the client offered chat.v0',
    );
  });

  it('403: a browser page of another origin', async () => {
    expectJsonRefusal(await refusalOf('/echo', { Origin: 'http://evil.example' }), 403, 'Forbidden', 'Origin not allowed: http://evil.example');
  });

  it('405, with Allow: GET: an upgrade with another method', async () => {
    const answer = await refusalOf('/echo', {}, 'POST');
    expectJsonRefusal(answer, 405, 'Method Not Allowed', 'WebSocket upgrade needs a GET request');
    expect(answer.headers['allow']).toBe('GET');
  });

  it('426, with Sec-WebSocket-Version: 13: another protocol version', async () => {
    const answer = await refusalOf('/echo', { 'Sec-WebSocket-Version': '8' });
    expectJsonRefusal(answer, 426, 'Upgrade Required', 'Unsupported Sec-WebSocket-Version: this server speaks version 13');
    expect(answer.headers['sec-websocket-version']).toBe('13');
  });

  it('426, with Upgrade and Sec-WebSocket-Version: a plain GET on a WebSocket path', async () => {
    const response = await fetch(t.httpUrl('/echo'));
    expect(response.status).toBe(426);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('upgrade')).toBe('websocket');
    expect(response.headers.get('sec-websocket-version')).toBe('13');
    const body = Buffer.from(await response.arrayBuffer());
    expect(Number(response.headers.get('content-length'))).toBe(body.length);
    expect(JSON.parse(body.toString('utf8'))).toEqual({
      message: 'This path only speaks WebSocket: connect with a WebSocket client (Upgrade: websocket)',
      error: 'Upgrade Required',
      statusCode: 426,
    });
  });

  it("503: past a route's maxConnections", async () => {
    clients.track(await RawClient.connect(t.port, '/held'));
    expectJsonRefusal(await refusalOf('/held'), 503, 'Service Unavailable', 'Too many connections to /held (maxConnections 1)');
  });

  it('503: guards that have not decided within handshakeTimeout', async () => {
    expectJsonRefusal(
      await refusalOf('/hung'),
      503,
      'Service Unavailable',
      'Upgrade not decided within 100 ms (handshakeTimeout): a guard, interceptor or pipe took too long',
    );
  });

  it('500: a bug before the 101 (an extension that throws while negotiating)', async () => {
    expectJsonRefusal(await refusalOf('/broken', { 'Sec-WebSocket-Extensions': 'x-throw' }), 500, 'Internal Server Error', 'Internal server error');
  });
});

describe.each(PLATFORMS)('on %s, with the module limit and at shutdown', (platform) => {
  it("503: past the module's maxConnections, then while the application shuts down", async () => {
    const t = await startApp([RefusalsController], { maxConnections: 1, shutdownTimeout: 5000 }, [], { platform });
    const refusalOf = (path: string) => answerTo(t.port, upgradeRequest(t.port, path));
    let closing: Promise<void> | undefined;
    try {
      const held = clients.track(await RawClient.connect(t.port, '/held'));
      expectJsonRefusal(await refusalOf('/echo'), 503, 'Service Unavailable', 'Too many connections (maxConnections 1)');
      closing = t.close();
      // The server's Close (1001) says shutdown began; the held handler keeps the server listening until released.
      expect((await held.readClose())?.code).toBe(1001);
      expectJsonRefusal(await refusalOf('/echo'), 503, 'Service Unavailable', 'Server is shutting down');
    } finally {
      hold.resolve();
      clients.dropAll();
      await within(closing ?? t.close(), 5000, 'app.close()');
    }
  });
});

describe('WebSocketUpgrade, on a server of your own', () => {
  let server: Server;
  beforeAll(async () => {
    const upgrade = new WebSocketUpgrade({ protocol: 'feed.v1' }, async (session) => {
      for await (const frame of session.incoming) await session.send(frame);
    });
    server = createServer();
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => void upgrade.handle(request, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = () => (server.address() as AddressInfo).port;

  it('400: a request target no URL parser takes', async () => {
    const answer = await answerTo(port(), upgradeRequest(port(), '//[', { 'Sec-WebSocket-Protocol': 'feed.v1' }));
    expectJsonRefusal(answer, 400, 'Bad Request', 'Malformed request target');
  });

  it('400: the client does not offer the subprotocol', async () => {
    expectJsonRefusal(
      await answerTo(port(), upgradeRequest(port(), '/feed')),
      400,
      'Bad Request',
      'Unsupported subprotocol: this path accepts feed.v1; the client offered none',
    );
  });

  it('426, with Sec-WebSocket-Version: 13: another protocol version', async () => {
    const answer = await answerTo(port(), upgradeRequest(port(), '/feed', { 'Sec-WebSocket-Version': '7', 'Sec-WebSocket-Protocol': 'feed.v1' }));
    expectJsonRefusal(answer, 426, 'Upgrade Required', 'Unsupported Sec-WebSocket-Version: this server speaks version 13');
    expect(answer.headers['sec-websocket-version']).toBe('13');
  });
});
