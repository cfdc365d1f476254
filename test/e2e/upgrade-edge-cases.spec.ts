/**
 * Edge cases around the 101, on both HTTP platforms: nothing reaches the
 * socket before the 101 (no Ping while a guard decides, no send from a
 * REQUEST-scoped provider), a filter's CloseReason that may not go on the
 * wire as given, a filter that rejects before the 101, closeAll and
 * sessions that open while it waits, shutdown while a guard decides, how
 * errors after the 101 are logged, and WebSocketUpgrade's error mapping.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import { connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { runInThisContext } from 'node:vm';
import {
  BadRequestException,
  Catch,
  Controller,
  ForbiddenException,
  Inject,
  Injectable,
  Scope,
  UseFilters,
  UseGuards,
  type CanActivate,
  type ExceptionFilter,
} from '@nestjs/common';
import {
  CloseReason,
  WEBSOCKET_SESSION,
  WebSocketCloseException,
  WebSocketRoute,
  WebSocketSessions,
  WebSocketUpgrade,
  type DefaultWebSocketServerSession,
  type WebSocketsModuleOptions,
} from 'nest-websocket-routes';
import { deferred, sleep, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type Platform, type TestApp } from '../support/nest-app.js';
import { closePayload, RawClient } from '../support/raw-client.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { runCounter } from '../support/run-counter.js';
import { WsClient } from '../support/ws-client.js';

// ---------------------------------------------------------------------------
// Byte-exact client: every byte the server sends, in order, HTTP head included.

/** A bare TCP client that sends an upgrade request and keeps every byte it gets back. */
class ByteRecorder {
  private buffer = Buffer.alloc(0);
  private readonly listeners = new Set<() => void>();
  private isEnded = false;
  readonly ended: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.notify();
    });
    socket.on('error', () => undefined);
    this.ended = new Promise((resolve) =>
      socket.once('close', () => {
        this.isEnded = true;
        this.notify();
        resolve();
      }),
    );
  }

  static async upgrade(port: number, path: string): Promise<ByteRecorder> {
    const socket = tcpConnect(port, '127.0.0.1');
    const recorder = new ByteRecorder(socket);
    await once(socket, 'connect');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    return recorder;
  }

  /** Everything received so far. */
  get bytes(): Buffer {
    return this.buffer;
  }

  /** Waits until the bytes received satisfy `test`; rejects when the connection ends first or after `ms`. */
  async until(test: (bytes: Buffer) => boolean, what: string, ms = 5000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (test(this.buffer)) return this.buffer;
      if (this.isEnded) throw new Error(`Connection ended before ${what}; got ${JSON.stringify(this.buffer.toString('latin1'))}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`Timed out waiting for ${what}; got ${JSON.stringify(this.buffer.toString('latin1'))}`);
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

  destroy(): void {
    this.socket.destroy();
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** What came after the response: WebSocket frames after a 101, nothing after a refusal. */
  rest: Buffer;
}

/** The HTTP response at the start of `bytes`, or undefined while it is incomplete. */
function parseHttpResponse(bytes: Buffer): HttpResponse | undefined {
  const end = bytes.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = bytes.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(statusLine.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = status === 101 ? 0 : Number(headers['content-length'] ?? 0);
  const after = bytes.subarray(end + 4);
  if (after.length < length) return undefined;
  return { status, headers, body: after.subarray(0, length).toString('utf8'), rest: after.subarray(length) };
}

/** The complete (unmasked) server frames at the start of `bytes`. */
function serverFrames(bytes: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  let offset = 0;
  while (bytes.length - offset >= 2) {
    let length = bytes[offset + 1] & 0x7f;
    let start = offset + 2;
    if (length === 126) {
      if (bytes.length - offset < 4) break;
      length = bytes.readUInt16BE(offset + 2);
      start = offset + 4;
    } else if (length === 127) {
      if (bytes.length - offset < 10) break;
      length = Number(bytes.readBigUInt64BE(offset + 2));
      start = offset + 10;
    }
    if (bytes.length < start + length) break;
    frames.push({ opcode: bytes[offset] & 0x0f, payload: Buffer.from(bytes.subarray(start, start + length)) });
    offset = start + length;
  }
  return frames;
}

const STATUS_LINE_PREFIX = 'HTTP/1.1 1xx'.length;
const firstBytes = (bytes: Buffer) => bytes.subarray(0, STATUS_LINE_PREFIX).toString('latin1');

// ---------------------------------------------------------------------------
// What the app reports to the tests; reset before each test.

const clients = new ClientTracker();

const { hit, runs, clear: clearRuns } = runCounter();

/** What `session.send()` in a REQUEST-scoped provider's constructor came to: 'sent' or the error's message. */
let welcomeOutcome = deferred<string>();

/** A guard that waits for the test's verdict. */
let decision = newDecision();
function newDecision() {
  return { entered: deferred(), verdict: deferred<boolean>() };
}

/** Every app of this file logs here, so one app's `logger: false` cannot silence another's. */
const logger = new RecordingLogger();

beforeEach(() => {
  clearRuns();
  welcomeOutcome = deferred<string>();
  decision = newDecision();
  logger.reset();
});
afterEach(() => clients.dropAll());

// ---------------------------------------------------------------------------
// Enhancers

@Injectable()
class SlowYesGuard implements CanActivate {
  async canActivate(): Promise<boolean> {
    await sleep(300);
    return true;
  }
}

@Injectable()
class SlowNoGuard implements CanActivate {
  async canActivate(): Promise<boolean> {
    await sleep(300);
    return false;
  }
}

@Injectable()
class DecidingGuard implements CanActivate {
  canActivate(): Promise<boolean> {
    decision.entered.resolve();
    return decision.verdict.promise;
  }
}

const forbidding: CanActivate = {
  canActivate: () => {
    throw new ForbiddenException('denied');
  },
};

/** Picks a close reason too long for a Close frame. */
@Catch()
class LongReasonFilter implements ExceptionFilter {
  catch() {
    return new CloseReason(4404, 'x'.repeat(200));
  }
}

/** Picks a code that may not be sent (1005 only says "no code" locally). */
@Catch()
class ReservedCodeFilter implements ExceptionFilter {
  catch() {
    return new CloseReason(1005);
  }
}

/** An async filter with a bug of its own. */
@Catch()
class RejectingFilter implements ExceptionFilter {
  async catch(): Promise<void> {
    throw new Error('filter broke');
  }
}

// ---------------------------------------------------------------------------
// Controllers

async function drain(session: DefaultWebSocketServerSession): Promise<void> {
  for await (const frame of session.incoming) void frame;
}

async function echo(session: DefaultWebSocketServerSession): Promise<void> {
  for await (const frame of session.incoming) await session.send(frame.readText());
}

@Controller()
class EdgeController {
  @WebSocketRoute('slow-yes', { pingInterval: 50 })
  @UseGuards(SlowYesGuard)
  async slowYes(session: DefaultWebSocketServerSession) {
    hit('slow-yes');
    await drain(session);
  }

  @WebSocketRoute('slow-no', { pingInterval: 50 })
  @UseGuards(SlowNoGuard)
  async slowNo(session: DefaultWebSocketServerSession) {
    hit('slow-no');
    await drain(session);
  }

  @WebSocketRoute('long-reason')
  @UseFilters(LongReasonFilter)
  async longReason(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new Error('to the filter');
  }

  @WebSocketRoute('reserved-code')
  @UseFilters(ReservedCodeFilter)
  async reservedCode(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new Error('to the filter');
  }

  @WebSocketRoute('rejecting-filter')
  @UseFilters(RejectingFilter)
  @UseGuards(forbidding)
  rejectingFilter() {
    hit('rejecting-filter');
  }

  @WebSocketRoute('bad-input')
  async badInput(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new BadRequestException('bad input');
  }

  @WebSocketRoute('close-exception')
  async closeException(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new WebSocketCloseException(4001, 'x');
  }

  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    await echo(session);
  }
}

/** Sends from its constructor, before the 101: as a provider that greets each session would. */
@Injectable({ scope: Scope.REQUEST })
class Welcomer {
  constructor(@Inject(WEBSOCKET_SESSION) session: DefaultWebSocketServerSession) {
    session.send('welcome').then(
      () => welcomeOutcome.resolve('sent'),
      (error: unknown) => welcomeOutcome.resolve(error instanceof Error ? error.message : String(error)),
    );
  }
}

@Controller()
class WelcomeController {
  constructor(readonly welcomer: Welcomer) {}

  @WebSocketRoute('welcome')
  async welcome(session: DefaultWebSocketServerSession) {
    await session.send('hello');
    await drain(session);
  }
}

@Controller()
class ShutdownController {
  /** Keeps reading after the server's Close: ends only when TCP does. */
  @WebSocketRoute('ignores-close', { closeTimeout: 10_000 })
  async ignoresClose(session: DefaultWebSocketServerSession) {
    await drain(session);
  }

  @WebSocketRoute('keep')
  async keep(session: DefaultWebSocketServerSession) {
    await drain(session);
  }

  @WebSocketRoute('decide')
  @UseGuards(DecidingGuard)
  async decide(session: DefaultWebSocketServerSession) {
    hit('decide');
    await drain(session);
  }

  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    await echo(session);
  }
}

// ---------------------------------------------------------------------------

const start = (controllers: Parameters<typeof startApp>[0], platform: Platform, options: WebSocketsModuleOptions = {}) =>
  startApp(controllers, options, [Welcomer], { platform, logger: true, configure: (app) => app.useLogger(logger) });

/** Waits until the server has no session left (their handlers returned and their connections are gone). */
async function sessionsEnded(t: TestApp): Promise<void> {
  const sessions = t.app.get(WebSocketSessions);
  await within(
    (async () => {
      while (sessions.size > 0) await sleep(10);
    })(),
    5000,
    'the sessions to end on the server',
  );
}

describe.each(PLATFORMS)('on %s', (platform: Platform) => {
  describe('one app', () => {
    let t: TestApp;
    beforeAll(async () => (t = await start([EdgeController, WelcomeController], platform)));
    afterAll(() => t.close());

    describe('nothing reaches the socket before the 101', () => {
      it('sends no Ping while a slow guard decides: the first bytes are the 101, Pings come after it', async () => {
        const client = clients.track(await ByteRecorder.upgrade(t.port, '/slow-yes'));
        const bytes = await client.until((received) => received.length >= STATUS_LINE_PREFIX, 'the status line');
        expect(firstBytes(bytes)).toBe('HTTP/1.1 101');
        await client.until((received) => {
          const response = parseHttpResponse(received);
          return response !== undefined && serverFrames(response.rest).some((frame) => frame.opcode === 0x9);
        }, 'a Ping after the 101');
        const response = parseHttpResponse(client.bytes)!;
        expect(response.status).toBe(101);
        // Only Pings: no pong was sent, so the first Ping is still waiting for it.
        expect(serverFrames(response.rest).map((frame) => frame.opcode)).toEqual([0x9]);
        expect(runs('slow-yes')).toBe(1);
      });

      it('sends no Ping while a slow guard refuses: the 403 is all that comes before TCP ends', async () => {
        const client = clients.track(await ByteRecorder.upgrade(t.port, '/slow-no'));
        await within(client.ended, 5000, 'the refusal to end TCP');
        expect(firstBytes(client.bytes)).toBe('HTTP/1.1 403');
        const response = parseHttpResponse(client.bytes);
        expect(response).toBeDefined();
        expect(response!.status).toBe(403);
        expect(response!.headers['content-length']).toBeDefined();
        expect(JSON.parse(response!.body)).toMatchObject({ statusCode: 403 });
        expect(response!.rest).toEqual(Buffer.alloc(0));
        expect(runs('slow-no')).toBe(0);
      });

      it('rejects a send from a REQUEST-scoped provider’s constructor: not open yet, and the 101 comes first', async () => {
        const client = clients.track(await ByteRecorder.upgrade(t.port, '/welcome'));
        const bytes = await client.until((received) => received.length >= STATUS_LINE_PREFIX, 'the status line');
        expect(firstBytes(bytes)).toBe('HTTP/1.1 101');
        expect(await within(welcomeOutcome.promise, 5000, 'the provider’s send to settle')).toMatch(/not open yet/);
        await client.until((received) => {
          const response = parseHttpResponse(received);
          return response !== undefined && serverFrames(response.rest).length > 0;
        }, 'the first frame');
        const [first] = serverFrames(parseHttpResponse(client.bytes)!.rest);
        expect(first.opcode).toBe(0x1);
        expect(first.payload.toString()).toBe('hello');
      });
    });

    describe('a filter’s CloseReason after the 101', () => {
      it('is cut to 123 bytes when its reason is too long for a Close frame', async () => {
        const client = clients.track(await WsClient.connect(t.url('/long-reason')));
        expect(await client.nextText()).toBe('started');
        expect(await client.waitClosed()).toEqual({ code: 4404, reason: 'x'.repeat(123) });
        await sessionsEnded(t);
        expect(logger.errors).toEqual([]);
      });

      it('becomes 1011, with one warning, when its code may not be sent', async () => {
        const client = clients.track(await WsClient.connect(t.url('/reserved-code')));
        expect(await client.nextText()).toBe('started');
        expect((await client.waitClosed()).code).toBe(1011);
        await sessionsEnded(t);
        expect(logger.warns).toHaveLength(1);
        expect(logger.warns[0]).toContain('1005');
        expect(logger.errors).toEqual([]);
      });
    });

    describe('an async filter that rejects before the 101', () => {
      // Jest gives the test a copy of `process` that Node never emits on: the real one is the outer context's.
      const realProcess = runInThisContext('process') as NodeJS.Process;
      const unhandled: unknown[] = [];
      const record = (reason: unknown) => unhandled.push(reason);
      beforeEach(() => {
        unhandled.length = 0;
        realProcess.on('unhandledRejection', record);
      });
      afterEach(() => {
        realProcess.off('unhandledRejection', record);
      });

      it('gets the client a 500, logs one error, and leaves the process unaffected', async () => {
        const client = clients.track(await ByteRecorder.upgrade(t.port, '/rejecting-filter'));
        await within(client.ended, 5000, 'the answer to the upgrade');
        const response = parseHttpResponse(client.bytes);
        expect(response?.status).toBe(500);
        expect(response?.body).toBe('{"statusCode":500,"message":"Internal server error"}');
        expect(response?.rest).toEqual(Buffer.alloc(0));
        expect(runs('rejecting-filter')).toBe(0);
        expect(logger.errors).toHaveLength(1);
        expect(logger.errors[0]).toContain('filter broke');

        const other = clients.track(await WsClient.connect(t.url('/echo')));
        other.ws.send('still here');
        expect(await other.nextText()).toBe('still here');
        other.ws.close(1000);
        expect((await other.waitClosed()).code).toBe(1000);
        // A rejection nobody handled is reported once the microtask queue drained; the echo took longer than that.
        await sleep(10);
        expect(unhandled).toEqual([]);
      });
    });

    describe('logging after the 101', () => {
      it('closes an HttpException with 1008 and its message, with one warning and no error', async () => {
        const client = clients.track(await WsClient.connect(t.url('/bad-input')));
        expect(await client.nextText()).toBe('started');
        expect(await client.waitClosed()).toEqual({ code: 1008, reason: 'bad input' });
        await sessionsEnded(t);
        expect(logger.warns).toHaveLength(1);
        expect(logger.warns[0]).toContain('bad input');
        expect(logger.errors).toEqual([]);
      });

      it('logs nothing at warn or error for a WebSocketCloseException', async () => {
        const client = clients.track(await WsClient.connect(t.url('/close-exception')));
        expect(await client.nextText()).toBe('started');
        expect(await client.waitClosed()).toEqual({ code: 4001, reason: 'x' });
        await sessionsEnded(t);
        expect(logger.warns).toEqual([]);
        expect(logger.errors).toEqual([]);
      });
    });
  });

  describe('WebSocketSessions.closeAll', () => {
    it('ends only the sessions open when called: one that opens while it waits is not terminated at its timeout', async () => {
      const t = await start([ShutdownController], platform);
      try {
        const sessions = t.app.get(WebSocketSessions);
        const a = clients.track(await RawClient.connect(t.port, '/ignores-close'));
        expect(sessions.size).toBe(1);
        let closeAllDone = false;
        const closing = sessions.closeAll(1500, new CloseReason(1012, 'restart')).then(() => {
          closeAllDone = true;
        });
        // A does not answer the Close, and its handler keeps reading: closeAll waits for its timeout.
        expect(await a.readClose()).toEqual({ code: 1012, reason: 'restart' });
        await sleep(200);
        const b = clients.track(await WsClient.connect(t.url('/echo')));
        b.ws.send('during');
        expect(await b.nextText()).toBe('during');
        expect(closeAllDone).toBe(false);
        await within(closing, 5000, 'closeAll to return');
        // A was terminated at the timeout, without an answer to its Close.
        expect(await a.waitForEnd()).toBe(true);
        b.ws.send('after');
        expect(await b.nextText()).toBe('after');
        b.ws.close(1000);
        expect((await b.waitClosed()).code).toBe(1000);
        await sessionsEnded(t);
      } finally {
        clients.dropAll();
        await t.close();
      }
    });
  });

  describe('shutdown while a guard decides', () => {
    it('answers 503 instead of the 101, never runs the handler, and app.close() resolves', async () => {
      const t = await start([ShutdownController], platform, { shutdownTimeout: 2000 });
      let closing: Promise<void> | undefined;
      try {
        // An open session keeps shutdown waiting; its Close says shutdown has begun.
        const keeper = clients.track(await RawClient.connect(t.port, '/keep'));
        const opening = RawClient.open(t.port, '/decide');
        await within(decision.entered.promise, 5000, 'the guard to run');
        closing = t.app.close();
        expect(await keeper.readClose()).toEqual({ code: 1001, reason: 'Server is shutting down' });
        decision.verdict.resolve(true);
        const { client, response } = await opening;
        clients.track(client);
        expect(response.status).toBe(503);
        expect(await client.waitForEnd()).toBe(true);
        expect(await client.readAll()).toEqual([]);
        keeper.send({ opcode: 0x8, payload: closePayload(1001) });
        await within(closing, 10_000, 'app.close() to resolve');
        expect(runs('decide')).toBe(0);
      } finally {
        decision.verdict.resolve(false);
        clients.dropAll();
        await (closing ?? t.close());
      }
    });
  });
});

interface UpgradeServer {
  port: number;
  /** Waits for the handlers of the upgrades it took, then closes the server. */
  stop(): Promise<void>;
}

/** A plain Node server on loopback whose upgrades all go to `upgrade`, with `params`. */
async function serveUpgrades(upgrade: WebSocketUpgrade<false>, params?: Record<string, string>): Promise<UpgradeServer> {
  const server = createServer();
  const handled: Array<Promise<void>> = [];
  server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    handled.push(upgrade.handle(request, socket, head, params));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    stop: async () => {
      await Promise.allSettled(handled);
      server.close();
      await once(server, 'close');
    },
  };
}

describe('WebSocketUpgrade with raw: false', () => {
  const failures: Record<string, () => Error> = {
    '/bad-request': () => new BadRequestException('nope'),
    '/close-exception': () => new WebSocketCloseException(4002, 'y'),
  };
  let served: UpgradeServer;
  let port: number;

  beforeAll(async () => {
    const upgrade = new WebSocketUpgrade({ raw: false }, async (session: DefaultWebSocketServerSession) => {
      await session.send('started');
      throw failures[session.call.path]();
    });
    served = await serveUpgrades(upgrade);
    port = served.port;
  });
  afterAll(() => served.stop());

  it('closes an HttpException with 1008 and its message, as routes do', async () => {
    const client = clients.track(await WsClient.connect(`ws://127.0.0.1:${port}/bad-request`));
    expect(await client.nextText()).toBe('started');
    expect(await client.waitClosed()).toEqual({ code: 1008, reason: 'nope' });
  });

  it('closes a WebSocketCloseException with its own code', async () => {
    const client = clients.track(await WsClient.connect(`ws://127.0.0.1:${port}/close-exception`));
    expect(await client.nextText()).toBe('started');
    expect(await client.waitClosed()).toEqual({ code: 4002, reason: 'y' });
  });
});

describe('WebSocketUpgrade call', () => {
  const given = { room: 'lobby' };
  let served: UpgradeServer;
  let port: number;

  beforeAll(async () => {
    const upgrade = new WebSocketUpgrade({ raw: false }, async (session: DefaultWebSocketServerSession) => {
      const { call } = session;
      await session.sendSerialized({
        params: call.params,
        paramsAreTheCallersObject: call.params === given,
        paramsFrozen: Object.isFrozen(call.params),
        keys: Object.keys(call).sort(),
        query: call.query,
        headersAreTheRequests: call.headers === call.request.headers,
      });
    });
    served = await serveUpgrades(upgrade, given);
    port = served.port;
  });
  afterAll(() => served.stop());

  it('holds a frozen copy of the params given to handle(), and shows only its public names', async () => {
    const client = clients.track(await WsClient.connect(`ws://127.0.0.1:${port}/rooms?x=1&x=2`));
    expect(JSON.parse(await client.nextText())).toEqual({
      params: { room: 'lobby' },
      paramsAreTheCallersObject: false,
      paramsFrozen: true,
      keys: ['headers', 'params', 'path', 'protocol', 'request', 'route'],
      query: { x: ['1', '2'] },
      headersAreTheRequests: true,
    });
    expect(Object.isFrozen(given)).toBe(false);
  });
});
