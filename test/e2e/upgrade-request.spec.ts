/**
 * What a session keeps of its upgrade request, on both HTTP platforms and
 * for every kind of route (nothing to decide before the 101, a guard, an
 * interceptor, pipes): `session.call.request` is the platform's own request
 * (Express's `req` with `get()`, fresh `params` and no `res` after the 101;
 * on Fastify the Node request with `params`, `query`, `ip` and `raw`),
 * `call.path` and `call.query` as URL reads the target (dot segments,
 * `%2e`, backslashes, fragments). And the `handshakeTimeout` deadline:
 * pipes and interceptors that never settle get 503 (guards: see
 * security-limits.spec.ts), while a route with nothing to decide is
 * answered 101 at once and no accepted session is cut by the deadline.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import {
  Controller,
  Injectable,
  Query,
  UseGuards,
  UseInterceptors,
  type CallHandler,
  type CanActivate,
  type NestInterceptor,
  type PipeTransform,
} from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { NEVER, type Observable } from 'rxjs';
import { WebSocketRoute, WsSession, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { sleep, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type Platform, type TestApp } from '../support/nest-app.js';
import { Opcode, RawClient } from '../support/raw-client.js';
import { runCounter } from '../support/run-counter.js';

// ---------------------------------------------------------------------------
// What a route method sees of its upgrade request.

type DressedRequest = IncomingMessage & {
  get?: (name: string) => string | undefined;
  params?: Record<string, string>;
  query?: unknown;
  ip?: string;
  raw?: unknown;
  res?: unknown;
};

/** Computed inside the route method, before anything else, and sent to the client as JSON. */
interface Report {
  path: string;
  route: string;
  query: Record<string, string | string[]>;
  params: Record<string, string>;
  /** `call.request.params` as the method first saw it (null when absent). */
  requestParams: Record<string, string> | null;
  requestParamsIsCallParams: boolean;
  /** Whether a property could be set on `call.request.params`. */
  requestParamsMutable: boolean;
  /** Whether that property then showed in `call.params`. */
  leakedIntoCallParams: boolean;
  callParamsFrozen: boolean;
  /** Express */
  getIsFunction: boolean;
  host: string | null;
  prototypeIsExpressRequest: boolean;
  resIsUndefined: boolean;
  /** Fastify */
  requestQuery: unknown;
  ip: string | null;
  rawIsRequest: boolean;
}

function reportOf(session: DefaultWebSocketServerSession): Report {
  const { call } = session;
  const request = call.request as DressedRequest;
  const adapter = session.application.get(HttpAdapterHost).httpAdapter;
  const requestParams = request.params;
  const snapshot = requestParams === undefined ? null : { ...requestParams };
  let requestParamsMutable = false;
  if (requestParams !== undefined) {
    try {
      // Left in place: the next session on the route must get a fresh object all the same.
      requestParams.probe = 'set by the method';
      requestParamsMutable = requestParams.probe === 'set by the method';
    } catch {
      requestParamsMutable = false; // a frozen object, in strict mode
    }
  }
  return {
    path: call.path,
    route: call.route,
    query: { ...call.query },
    params: { ...call.params },
    requestParams: snapshot,
    requestParamsIsCallParams: requestParams === call.params,
    requestParamsMutable,
    leakedIntoCallParams: 'probe' in call.params,
    callParamsFrozen: Object.isFrozen(call.params),
    getIsFunction: typeof request.get === 'function',
    host: typeof request.get === 'function' ? (request.get('host') ?? null) : null,
    prototypeIsExpressRequest:
      adapter.getType() === 'express' && Object.getPrototypeOf(request) === (adapter.getInstance() as { request: object }).request,
    resIsUndefined: request.res === undefined,
    requestQuery: adapter.getType() === 'fastify' ? (request.query ?? null) : null,
    ip: adapter.getType() === 'fastify' ? (request.ip ?? null) : null,
    rawIsRequest: request.raw === request,
  };
}

const { hit, runs, clear: clearRuns } = runCounter();

@Injectable()
class AllowGuard implements CanActivate {
  async canActivate(): Promise<boolean> {
    await sleep(5);
    return true;
  }
}

@Injectable()
class PassInterceptor implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle();
  }
}

@Injectable()
class PassPipe implements PipeTransform {
  transform(value: unknown): unknown {
    return value;
  }
}

/** Every kind of route: nothing to decide before the 101, a guard, an interceptor, pipes. */
@Controller()
class ReportController {
  @WebSocketRoute('plain/:room')
  async plainRoom(session: DefaultWebSocketServerSession) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('plain')
  async plain(session: DefaultWebSocketServerSession) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('guarded/:room')
  @UseGuards(AllowGuard)
  async guardedRoom(session: DefaultWebSocketServerSession) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('guarded')
  @UseGuards(AllowGuard)
  async guarded(session: DefaultWebSocketServerSession) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('intercepted/:room')
  @UseInterceptors(PassInterceptor)
  async interceptedRoom(session: DefaultWebSocketServerSession) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('intercepted')
  @UseInterceptors(PassInterceptor)
  async intercepted(session: DefaultWebSocketServerSession) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('piped/:room')
  async pipedRoom(@WsSession() session: DefaultWebSocketServerSession, @Query('x', PassPipe) _x: unknown) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('piped')
  async piped(@WsSession() session: DefaultWebSocketServerSession, @Query('x', PassPipe) _x: unknown) {
    await session.sendSerialized(reportOf(session));
  }

  @WebSocketRoute('base/route')
  async baseRoute(session: DefaultWebSocketServerSession) {
    await session.sendSerialized(reportOf(session));
  }
}

// ---------------------------------------------------------------------------
// The handshakeTimeout deadline.

@Injectable()
class HangingPipe implements PipeTransform {
  transform(): Promise<never> {
    hit('hanging pipe');
    return new Promise<never>(() => undefined);
  }
}

@Injectable()
class HangingInterceptor implements NestInterceptor {
  intercept(): Observable<unknown> {
    hit('hanging interceptor');
    return NEVER;
  }
}

@Injectable()
class QuickGuard implements CanActivate {
  async canActivate(): Promise<boolean> {
    await sleep(5);
    return true;
  }
}

/** Holds the session past the route's handshakeTimeout, then proves it is still open and echoes one message. */
async function outlive(session: DefaultWebSocketServerSession, ms: number) {
  await sleep(ms);
  await session.send('still open');
  for await (const frame of session.incoming) {
    await session.send(frame);
    return;
  }
}

@Controller()
class DeadlineController {
  @WebSocketRoute('hung-pipe')
  async hungPipe(@WsSession() session: DefaultWebSocketServerSession, @Query('x', HangingPipe) _x: unknown) {
    hit('hung-pipe');
    await session.send('too late');
  }

  @WebSocketRoute('hung-interceptor')
  @UseInterceptors(HangingInterceptor)
  async hungInterceptor(session: DefaultWebSocketServerSession) {
    hit('hung-interceptor');
    await session.send('too late');
  }

  @WebSocketRoute('instant', { handshakeTimeout: 1 })
  async instant(session: DefaultWebSocketServerSession) {
    await outlive(session, 400);
  }

  @WebSocketRoute('quick-guard', { handshakeTimeout: 100 })
  @UseGuards(QuickGuard)
  async quickGuard(session: DefaultWebSocketServerSession) {
    await outlive(session, 300);
  }
}

// ---------------------------------------------------------------------------

const clients = new ClientTracker();
afterEach(() => clients.dropAll());
beforeEach(() => clearRuns());

/** Opens a raw upgrade on `target` exactly as written (the `ws` client would resolve dot segments itself). */
async function reportAt(t: TestApp, target: string): Promise<Report> {
  const client = clients.track(await RawClient.connect(t.port, target));
  const frame = await client.readFrame();
  expect(frame?.opcode).toBe(Opcode.TEXT);
  return JSON.parse(frame!.payload.toString('utf8')) as Report;
}

/**
 * A bare upgrade on a TCP socket that is tracked before anything is awaited (so a test that fails
 * half-way still lets the app close), keeping every byte the server sends.
 */
class UpgradeRecorder {
  private received = Buffer.alloc(0);
  private readonly listeners = new Set<() => void>();
  private isEnded = false;
  readonly ended: Promise<void>;
  readonly sentAt: number;

  private constructor(
    readonly socket: Socket,
    port: number,
    path: string,
  ) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.notify();
    });
    this.ended = new Promise((resolve) =>
      socket.once('close', () => {
        this.isEnded = true;
        this.notify();
        resolve();
      }),
    );
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    this.sentAt = Date.now();
  }

  static async open(port: number, path: string): Promise<UpgradeRecorder> {
    const socket = clients.track(tcpConnect(port, '127.0.0.1'));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new UpgradeRecorder(socket, port, path);
  }

  get text(): string {
    return this.received.toString('latin1');
  }

  /** Waits until `test` holds for the bytes so far; rejects when the connection ended first or after `ms`. */
  async until(test: (text: string) => boolean, what: string, ms = 5000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (test(this.text)) return this.text;
      if (this.isEnded) throw new Error(`Connection ended before ${what}; got ${JSON.stringify(this.text)}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`Timed out waiting for ${what}; got ${JSON.stringify(this.text)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        const listeners = this.listeners;
        function done() {
          clearTimeout(timer);
          listeners.delete(done);
          resolve();
        }
        listeners.add(done);
      });
    }
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

/** What each platform's dressing must give, on top of what every platform gives. */
function expectPlatformShape(platform: Platform, t: TestApp, report: Report) {
  if (platform === 'express') {
    expect(report).toMatchObject({
      getIsFunction: true,
      host: `127.0.0.1:${t.port}`,
      prototypeIsExpressRequest: true,
      resIsUndefined: true,
    });
  } else {
    expect(report).toMatchObject({ requestQuery: report.query, ip: '127.0.0.1', rawIsRequest: true });
  }
}

const KINDS = ['plain', 'guarded', 'intercepted', 'piped'] as const;

describe.each(PLATFORMS)('on %s', (platform) => {
  describe('session.call.request and session.call', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([ReportController], {}, [], { platform })));
    afterAll(() => t.close());

    describe.each(KINDS)('on the route kind %s', (kind) => {
      it('is the platform’s request, with fresh mutable params equal to the route’s (call.params frozen); path and query from the target', async () => {
        const report = await reportAt(t, `/${kind}/lobby?x=1&y=z&x=2`);
        expect(report).toMatchObject({
          path: `/${kind}/lobby`,
          route: `/${kind}/:room`,
          query: { x: ['1', '2'], y: 'z' },
          params: { room: 'lobby' },
          requestParams: { room: 'lobby' },
          requestParamsIsCallParams: false,
          requestParamsMutable: true,
          leakedIntoCallParams: false,
          callParamsFrozen: true,
        });
        expectPlatformShape(platform, t, report);
      });

      it('gives a route without params a fresh empty request.params for each session', async () => {
        for (const _ of [1, 2]) {
          const report = await reportAt(t, `/${kind}?only=one`);
          expect(report).toMatchObject({
            path: `/${kind}`,
            route: `/${kind}`,
            query: { only: 'one' },
            params: {},
            requestParams: {},
            requestParamsIsCallParams: false,
            requestParamsMutable: true,
            leakedIntoCallParams: false,
            callParamsFrozen: true,
          });
          expectPlatformShape(platform, t, report);
        }
      });

      it.each([
        ['dot segments', (k: string) => `/${k}/x/../lobby?q=1&q=2`],
        ['single-dot segments', (k: string) => `/${k}/././lobby?q=1&q=2`],
        ['%2e%2e segments', (k: string) => `/${k}/x/%2e%2E/lobby?q=1&q=2`],
        ['a backslash', (k: string) => `/${k}\\lobby?q=1&q=2`],
        ['a fragment', (k: string) => `/${k}/lobby?q=1&q=2#frag?q=3`],
      ])('reads a target with %s as URL does', async (_what, targetOf) => {
        const report = await reportAt(t, targetOf(kind));
        expect(report).toMatchObject({
          path: `/${kind}/lobby`,
          route: `/${kind}/:room`,
          query: { q: ['1', '2'] },
          params: { room: 'lobby' },
          requestParams: { room: 'lobby' },
        });
        expectPlatformShape(platform, t, report);
      });
    });

    it('takes /base/x/../route on the route /base/route', async () => {
      const report = await reportAt(t, '/base/x/../route?a=1&a=2&b=%20');
      expect(report).toMatchObject({ path: '/base/route', route: '/base/route', query: { a: ['1', '2'], b: ' ' }, params: {} });
    });
  });

  describe('the handshakeTimeout deadline', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([DeadlineController], { handshakeTimeout: 150 }, [], { platform })));
    afterAll(() => t.close());

    it.each([
      ['a pipe', '/hung-pipe', 'hanging pipe', 'hung-pipe'],
      ['an interceptor', '/hung-interceptor', 'hanging interceptor', 'hung-interceptor'],
    ])('answers 503 when %s never settles, once handshakeTimeout passed, and never runs the method', async (_what, path, enhancer, method) => {
      const client = await UpgradeRecorder.open(t.port, path);
      const head = await client.until((text) => text.includes('\r\n\r\n'), 'the answer', 3000);
      const elapsed = Date.now() - client.sentAt;
      expect(head.startsWith('HTTP/1.1 503 ')).toBe(true);
      await within(client.ended, 5000, 'the refusal to end TCP');
      expect(client.text).toMatch(/not decided within 150 ms/);
      expect(elapsed).toBeGreaterThanOrEqual(120);
      expect(runs(enhancer)).toBe(1);
      expect(runs(method)).toBe(0);
    });

    it('answers a route with nothing to decide 101 at once: first bytes, and the session outlives its 1 ms handshakeTimeout', async () => {
      const client = await UpgradeRecorder.open(t.port, '/instant');
      const first = await client.until((text) => text.length >= 12, 'the status line');
      expect(first.slice(0, 12)).toBe('HTTP/1.1 101');
      // Well under the method's 400 ms sleep: the 101 does not wait for anything.
      expect(Date.now() - client.sentAt).toBeLessThan(300);
      // Past the route's 1 ms deadline the session is still open, and nothing HTTP came after the 101.
      const text = await client.until((received) => received.includes('still open'), 'the method’s message');
      expect(text.startsWith('HTTP/1.1 101')).toBe(true);
      expect(text.indexOf('HTTP/1.1', 1)).toBe(-1);
    });

    it.each([
      ['nothing to decide', 'its 1 ms', '/instant'],
      ['a guard that decided in time', 'its 100 ms', '/quick-guard'],
    ])('keeps a session of a route with %s open past %s handshakeTimeout (%s)', async (_what, _timeout, path) => {
      const client = clients.track(await RawClient.connect(t.port, path));
      const first = await client.readFrame();
      expect(first?.payload.toString()).toBe('still open');
      client.send({ opcode: Opcode.TEXT, payload: 'echo me' });
      const echoed = await client.readFrame();
      expect(echoed?.opcode).toBe(Opcode.TEXT);
      expect(echoed?.payload.toString()).toBe('echo me');
    });
  });
});
