/**
 * `connectWebSocket(app, path)`: opens a WebSocket to a Nest application
 * under test in one call. It starts the app on a free loopback port when the
 * test has not, runs the opening handshake over `node:http`, and turns a
 * refusal (a guard's 401, an unknown path's 404) into an error a test can assert on.
 */
import { randomBytes } from 'node:crypto';
import { request, type IncomingMessage, type OutgoingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { computeAcceptKey, headerTokens } from '../protocol/handshake.js';
import { WebSocketHandshakeError } from './testing-errors.js';
import { TestClientConnection, type WebSocketTestClient } from './websocket-test-client.js';

export interface ConnectWebSocketOptions {
  /** Subprotocols to offer, in order of preference (`Sec-WebSocket-Protocol`). */
  protocols?: string | string[];
  /** Extra request headers (`Authorization`, `Cookie`, ...); they win over the handshake's own. */
  headers?: Record<string, string>;
  /**
   * Milliseconds to wait for the handshake, and the default for every
   * `receive*()` call and for `close()`. Default 5 000.
   */
  timeout?: number;
}

const DEFAULT_TIMEOUT = 5_000;
/** Enough of a refusal's body for any assertion; the rest is read and dropped. */
const MAX_BODY = 64 * 1024;

/** `app.listen(0)` calls this helper started, so concurrent connects share one instead of listening twice. */
const listenedByHelper = new WeakMap<INestApplication, Promise<unknown>>();

/**
 * Opens a WebSocket to `path` (with its query string, if any) on the app.
 *
 * If the app is not listening yet, this calls `app.listen(0, '127.0.0.1')`
 * for you (once per app, however many clients connect), so a test can go
 * straight from `createNestApplication()` to `connectWebSocket`; `app.close()`
 * stops it as usual. An app that listens already is reached at its own address.
 *
 * Resolves when the server accepted the upgrade (101). Rejects with
 * `WebSocketHandshakeError` (`status`, `headers`, `body`) when it answered
 * anything else, and with the socket's error when it dropped the request.
 */
export async function connectWebSocket(
  app: INestApplication,
  path: string,
  options: ConnectWebSocketOptions = {},
): Promise<WebSocketTestClient> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT;
  if (!Number.isFinite(timeout) || timeout <= 0) throw new TypeError(`timeout must be a positive number of ms, got ${timeout}`);
  const protocols =
    options.protocols === undefined ? [] : typeof options.protocols === 'string' ? [options.protocols] : options.protocols;
  const target = await serverTarget(app);
  const requestPath = path.startsWith('/') ? path : `/${path}`;
  const url = `ws://${target.authority}${requestPath}`;

  const key = randomBytes(16).toString('base64');
  const headers = new Map<string, [string, string]>();
  const setHeader = (name: string, value: string) => headers.set(name.toLowerCase(), [name, value]);
  setHeader('Connection', 'Upgrade');
  setHeader('Upgrade', 'websocket');
  setHeader('Sec-WebSocket-Version', '13');
  setHeader('Sec-WebSocket-Key', key);
  if (protocols.length > 0) setHeader('Sec-WebSocket-Protocol', protocols.join(', '));
  for (const [name, value] of Object.entries(options.headers ?? {})) setHeader(name, value);
  const sentKey = headers.get('sec-websocket-key')?.[1] ?? key;
  const offered = headerTokens(headers.get('sec-websocket-protocol')?.[1]);
  const requestHeaders: OutgoingHttpHeaders = Object.fromEntries(headers.values());

  return new Promise<WebSocketTestClient>((resolve, reject) => {
    const req = request({
      ...target.connect,
      path: requestPath,
      method: 'GET',
      headers: requestHeaders,
      // A fresh connection: an upgraded or refused socket must not go back to a keep-alive pool.
      agent: false,
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`WebSocket handshake to ${url} timed out after ${timeout} ms`)),
      timeout,
    );
    const settle = () => clearTimeout(timer);

    req.on('error', (error) => {
      settle();
      reject(error);
    });

    req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      settle();
      const refuse = (message: string) => {
        socket.destroy();
        reject(new WebSocketHandshakeError(res.statusCode ?? 0, res.headers, '', message));
      };
      if (res.statusCode !== 101) return refuse(`Expected 101 Switching Protocols, got ${res.statusCode}`);
      if (res.headers.upgrade?.toLowerCase() !== 'websocket') return refuse('101 response without Upgrade: websocket');
      if (res.headers['sec-websocket-accept'] !== computeAcceptKey(sentKey)) {
        return refuse('101 response with a wrong Sec-WebSocket-Accept');
      }
      const protocol = res.headers['sec-websocket-protocol'];
      // As browsers do: a protocol the client did not offer fails, no protocol at all is allowed.
      if (protocol !== undefined && !offered.includes(protocol)) {
        return refuse(`Server picked subprotocol ${JSON.stringify(protocol)}, which was not offered`);
      }
      resolve(new TestClientConnection(socket, head, url, protocol, timeout));
    });

    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        if (size < MAX_BODY) chunks.push(chunk.subarray(0, MAX_BODY - size));
        size += chunk.length;
      });
      const refuse = () => {
        settle();
        reject(new WebSocketHandshakeError(res.statusCode ?? 0, res.headers, Buffer.concat(chunks).toString('utf8')));
      };
      res.on('end', refuse);
      // The server may close right after its answer; what arrived of the body is enough.
      res.on('error', refuse);
      res.on('aborted', refuse);
    });

    req.end();
  });
}

interface ServerTarget {
  /** What goes into the URL after `ws://`. */
  authority: string;
  connect: { host: string; port: number } | { socketPath: string };
}

/** Where the app's HTTP server listens, after starting it on a free loopback port if nobody did. */
async function serverTarget(app: INestApplication): Promise<ServerTarget> {
  const server = app.getHttpServer() as Server;
  if (!server.listening) {
    let listening = listenedByHelper.get(app);
    if (listening === undefined) {
      listening = app.listen(0, '127.0.0.1');
      listenedByHelper.set(app, listening);
    }
    await listening;
  }
  const address = server.address() as AddressInfo | string | null;
  if (address === null) throw new Error('The application is not listening (was app.close() called?)');
  if (typeof address === 'string') return { authority: 'localhost', connect: { socketPath: address } };
  // A server on every interface is reached through loopback of the same family.
  const host = address.address === '::' ? '::1' : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  return {
    authority: `${host.includes(':') ? `[${host}]` : host}:${address.port}`,
    connect: { host, port: address.port },
  };
}
