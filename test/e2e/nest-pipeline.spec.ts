/**
 * The Nest request pipeline on WebSocket routes, end to end on both HTTP
 * platforms: guards, interceptors' pre-parts and pipes run with the upgrade
 * request before the 101 (a refusal is a real HTTP answer); exception filters
 * see errors before the 101 as HTTP errors and after it in a 'ws' context
 * that ends in a close code; interceptors wrap the whole session; Nest's
 * parameter decorators and pipes feed the route method.
 */
import 'reflect-metadata';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { connect as tcpConnect, type Socket } from 'node:net';
import {
  BadRequestException,
  Catch,
  Controller,
  createParamDecorator,
  ForbiddenException,
  Headers,
  HttpException,
  Injectable,
  Param,
  ParseIntPipe,
  Query,
  Req,
  SetMetadata,
  UnauthorizedException,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type ArgumentMetadata,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type LoggerService,
  type NestInterceptor,
  type PipeTransform,
} from '@nestjs/common';
import { APP_FILTER, APP_GUARD, HttpAdapterHost, Reflector } from '@nestjs/core';
import { finalize, of, tap, type Observable } from 'rxjs';
import WebSocket from 'ws';
import {
  CloseReason,
  WebSocketCloseException,
  WebSocketRoute,
  WebSocketSessions,
  WsSession,
  type DefaultWebSocketServerSession,
} from 'nest-websocket-routes';
import { deferred, sleep, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type Platform, type TestApp } from '../support/nest-app.js';
import { RawClient } from '../support/raw-client.js';
import { runCounter } from '../support/run-counter.js';
import { WsClient } from '../support/ws-client.js';

// ---------------------------------------------------------------------------
// What the app reports to the tests; reset before each test.

const { hit, runs, clear: clearRuns } = runCounter();

/** What the inspecting guard saw of its execution context. */
let guardSaw: Record<string, unknown> | undefined;
/** What filters saw: their host type, and for 'ws' hosts whether the client was the session. */
let filterSaw: Array<{ filter: string; type: string; clientIsSession?: boolean; error: string }> = [];
/** The session of the last 'ws'-filtered route, to compare with `switchToWs().getClient()`. */
let lastSession: unknown;
/** Interceptor and method events, in order. */
let events: string[] = [];
let marks: Record<string, number> = {};
let sessionOver = deferred();

/** A client that disconnects while a guard waits. */
let gate = newGate();
function newGate() {
  return { entered: deferred<Socket>(), release: deferred(), over: deferred() };
}

const FORBIDDEN_BODY = { message: 'Forbidden resource', error: 'Forbidden', statusCode: 403 };
const INTERNAL_BODY = { statusCode: 500, message: 'Internal server error' };

// ---------------------------------------------------------------------------
// Guards

type UpgradeRequest = IncomingMessage & {
  query: Record<string, string>;
  params: Record<string, string>;
  user?: { name: string };
};

const requestOf = (context: ExecutionContext) => context.switchToHttp().getRequest<UpgradeRequest>();

@Injectable()
class InspectGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = requestOf(context);
    guardSaw = {
      type: context.getType(),
      url: request.url,
      header: request.headers['x-probe'],
      query: { ...request.query },
      params: { ...request.params },
      handler: context.getHandler(),
      class: context.getClass(),
    };
    return request.query.token === 'secret';
  }
}

@Injectable()
class BearerGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const authorization = requestOf(context).headers.authorization;
    if (authorization !== 'Bearer x') throw new UnauthorizedException();
    return true;
  }
}

const Roles = (...roles: string[]) => SetMetadata('roles', roles);

@Injectable()
class RolesGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const roles = this.reflector.getAllAndOverride<string[] | undefined>('roles', [context.getHandler(), context.getClass()]);
    if (roles === undefined) return true;
    return roles.includes(String(requestOf(context).headers['x-role']));
  }
}

class PaymentRequiredException extends HttpException {
  constructor() {
    super({ code: 'PAYMENT_REQUIRED', detail: 'top up first' }, 402);
  }
}

@Injectable()
class PayGuard implements CanActivate {
  canActivate(): boolean {
    throw new PaymentRequiredException();
  }
}

@Injectable()
class AsyncGuard implements CanActivate {
  async canActivate(context: ExecutionContext): Promise<boolean> {
    await sleep(20);
    return requestOf(context).headers['x-pass'] === 'yes';
  }
}

/** Waits for the test to let it through; hands the test the upgrade socket. */
@Injectable()
class GateGuard implements CanActivate {
  async canActivate(context: ExecutionContext): Promise<boolean> {
    gate.entered.resolve(requestOf(context).socket);
    await gate.release.promise;
    return true;
  }
}

@Injectable()
class GateOverInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(finalize(() => gate.over.resolve()));
  }
}

@Injectable()
class BrokenGuard implements CanActivate {
  canActivate(): boolean {
    throw new Error('guard bug');
  }
}

@Injectable()
class ClassKeyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return requestOf(context).headers['x-class-key'] === 'k';
  }
}

@Controller()
class GuardedController {
  @WebSocketRoute('inspect/:id')
  @UseGuards(InspectGuard)
  async inspect(session: DefaultWebSocketServerSession) {
    hit('inspect');
    await session.send('in');
  }

  @WebSocketRoute('bearer')
  @UseGuards(BearerGuard)
  async bearer(session: DefaultWebSocketServerSession) {
    hit('bearer');
    await session.send('welcome');
  }

  @WebSocketRoute('admin')
  @Roles('admin')
  @UseGuards(RolesGuard)
  async admin(session: DefaultWebSocketServerSession) {
    hit('admin');
    await session.send('admin');
  }

  @WebSocketRoute('pay')
  @UseGuards(PayGuard)
  pay() {
    hit('pay');
  }

  @WebSocketRoute('async')
  @UseGuards(AsyncGuard)
  async async(session: DefaultWebSocketServerSession) {
    hit('async');
    await session.send('late but fine');
  }

  @WebSocketRoute('gate')
  @UseGuards(GateGuard)
  @UseInterceptors(GateOverInterceptor)
  async gate(session: DefaultWebSocketServerSession) {
    hit('gate');
    await session.send('through');
  }

  @WebSocketRoute('broken')
  @UseGuards(BrokenGuard)
  broken() {
    hit('broken');
  }
}

@Controller('members')
@UseGuards(ClassKeyGuard)
class ClassGuardedController {
  @WebSocketRoute('lounge')
  async lounge(session: DefaultWebSocketServerSession) {
    hit('lounge');
    await session.send('lounge');
  }

  @WebSocketRoute('vip')
  @Roles('vip')
  @UseGuards(RolesGuard)
  async vip(session: DefaultWebSocketServerSession) {
    hit('vip');
    await session.send('vip');
  }
}

/** Global guards: one given to `app.useGlobalGuards()`, one as an APP_GUARD provider. */
class UseGlobalGuardsGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (requestOf(context).headers['x-g1'] !== 'ok') throw new UnauthorizedException('global guard');
    return true;
  }
}

@Injectable()
class AppGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    if (requestOf(context).headers['x-g2'] !== 'ok') throw new ForbiddenException('app guard');
    return true;
  }
}

@Controller()
class GloballyGuardedController {
  @WebSocketRoute('open')
  async open(session: DefaultWebSocketServerSession) {
    hit('open');
    await session.send('open');
  }
}

// ---------------------------------------------------------------------------
// Exception filters

class GlobalOnlyError extends Error {}
class AppFilterError extends Error {}

const whatFailed = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Platform-neutral HTTP filter: answers 418 through Nest's HTTP adapter. */
@Catch()
@Injectable()
class TeapotFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: unknown, host: ArgumentsHost) {
    filterSaw.push({ filter: 'teapot', type: host.getType(), error: whatFailed(error) });
    const response = host.switchToHttp().getResponse();
    this.adapterHost.httpAdapter.reply(response, { teapot: true, cause: whatFailed(error) }, 418);
  }
}

/** An HTTP filter written for Express. */
@Catch()
class ExpressTeapotFilter implements ExceptionFilter {
  catch(error: unknown, host: ArgumentsHost) {
    filterSaw.push({ filter: 'express', type: host.getType(), error: whatFailed(error) });
    host
      .switchToHttp()
      .getResponse<{ status(code: number): { json(body: unknown): void } }>()
      .status(418)
      .json({ express: true, cause: whatFailed(error) });
  }
}

/** An HTTP filter written for Fastify. */
@Catch()
class FastifyTeapotFilter implements ExceptionFilter {
  catch(error: unknown, host: ArgumentsHost) {
    filterSaw.push({ filter: 'fastify', type: host.getType(), error: whatFailed(error) });
    host
      .switchToHttp()
      .getResponse<{ code(code: number): { send(body: unknown): void } }>()
      .code(418)
      .send({ fastify: true, cause: whatFailed(error) });
  }
}

/** A filter for errors after the 101: picks the close code. */
@Catch()
class CloseCodeFilter implements ExceptionFilter {
  catch(error: unknown, host: ArgumentsHost) {
    filterSaw.push({
      filter: 'close-code',
      type: host.getType(),
      clientIsSession: host.switchToWs().getClient() === lastSession,
      error: whatFailed(error),
    });
    return new CloseReason(4002, 'from filter');
  }
}

/** Looks, returns nothing. */
@Catch()
class SilentFilter implements ExceptionFilter {
  catch(error: unknown, host: ArgumentsHost) {
    filterSaw.push({ filter: 'silent', type: host.getType(), error: whatFailed(error) });
  }
}

/** Given to `app.useGlobalFilters()`: answers 451 before the 101, closes with 4100 after it. */
@Catch(GlobalOnlyError)
class GlobalFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: GlobalOnlyError, host: ArgumentsHost) {
    const type = host.getType();
    if (type === 'ws') {
      filterSaw.push({ filter: 'global', type, clientIsSession: host.switchToWs().getClient() === lastSession, error: error.message });
      return new CloseReason(4100, 'global filter');
    }
    filterSaw.push({ filter: 'global', type, error: error.message });
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), { global: true }, 451);
    return undefined;
  }
}

/** An APP_FILTER provider: 409 before the 101, 4200 after it. */
@Catch(AppFilterError)
@Injectable()
class AppFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: AppFilterError, host: ArgumentsHost) {
    const type = host.getType();
    filterSaw.push({ filter: 'app', type, error: error.message });
    if (type === 'ws') return new CloseReason(4200, 'app filter');
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), { app: true }, 409);
    return undefined;
  }
}

/** A filter with a bug of its own: it throws while handling. */
@Catch()
class BrokenFilter implements ExceptionFilter {
  catch(): void {
    throw new Error('the filter itself broke');
  }
}

const throwing = (error: () => unknown) =>
  ({
    canActivate: () => {
      throw error();
    },
  }) satisfies CanActivate;

@Controller()
class FilterController {
  @WebSocketRoute('filtered-guard')
  @UseFilters(TeapotFilter)
  @UseGuards(throwing(() => new ForbiddenException('no way')))
  filteredGuard() {
    hit('filtered-guard');
  }

  @WebSocketRoute('filtered-pipe/:n')
  @UseFilters(TeapotFilter)
  filteredPipe(@Param('n', ParseIntPipe) _n: number) {
    hit('filtered-pipe');
  }

  @WebSocketRoute('broken-filter')
  @UseFilters(BrokenFilter)
  @UseGuards(throwing(() => new ForbiddenException('never answered by the filter')))
  brokenFilter() {
    hit('broken-filter');
  }

  @WebSocketRoute('express-filter')
  @UseFilters(ExpressTeapotFilter)
  @UseGuards(throwing(() => new ForbiddenException('express only')))
  expressFilter() {
    hit('express-filter');
  }

  @WebSocketRoute('fastify-filter')
  @UseFilters(FastifyTeapotFilter)
  @UseGuards(throwing(() => new ForbiddenException('fastify only')))
  fastifyFilter() {
    hit('fastify-filter');
  }

  @WebSocketRoute('global-before')
  @UseGuards(throwing(() => new GlobalOnlyError('global before')))
  globalBefore() {
    hit('global-before');
  }

  @WebSocketRoute('app-before')
  @UseGuards(throwing(() => new AppFilterError('app before')))
  appBefore() {
    hit('app-before');
  }

  @WebSocketRoute('throws')
  async throws(session: DefaultWebSocketServerSession) {
    hit('throws');
    await session.send('started');
    throw new Error('boom');
  }

  @WebSocketRoute('close-exception')
  async closeException(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new WebSocketCloseException(4001, 'nope');
  }

  @WebSocketRoute('http-4xx')
  async http4xx(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new BadRequestException('bad input');
  }

  @WebSocketRoute('filter-after')
  @UseFilters(CloseCodeFilter)
  async filterAfter(session: DefaultWebSocketServerSession) {
    lastSession = session;
    await session.send('started');
    throw new Error('picked by filter');
  }

  @WebSocketRoute('silent-after')
  @UseFilters(SilentFilter)
  async silentAfter(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new Error('filter said nothing');
  }

  @WebSocketRoute('global-after')
  async globalAfter(session: DefaultWebSocketServerSession) {
    lastSession = session;
    await session.send('started');
    throw new GlobalOnlyError('global after');
  }

  @WebSocketRoute('app-after')
  async appAfter(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new AppFilterError('app after');
  }
}

@Controller('teapots')
@UseFilters(TeapotFilter)
class FilteredClassController {
  @WebSocketRoute('guarded')
  @UseGuards(throwing(() => new UnauthorizedException('class filter')))
  guarded() {
    hit('teapots-guarded');
  }
}

// ---------------------------------------------------------------------------
// Interceptors

@Injectable()
class TimingInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    events.push('method:before');
    marks.start = performance.now();
    return next.handle().pipe(
      tap((value) => events.push(`method:emit:${String(value)}`)),
      finalize(() => {
        events.push('method:finalize');
        marks.end = performance.now();
        sessionOver.resolve();
      }),
    );
  }
}

class GlobalInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const name = context.getHandler().name;
    if (name !== 'timed') return next.handle();
    events.push('global:before');
    return next.handle().pipe(
      tap((value) => events.push(`global:emit:${String(value)}`)),
      finalize(() => events.push('global:finalize')),
    );
  }
}

@Injectable()
class RefusingInterceptor implements NestInterceptor {
  intercept(): Observable<unknown> {
    throw new HttpException({ statusCode: 423, message: 'locked by interceptor' }, 423);
  }
}

@Injectable()
class CacheInterceptor implements NestInterceptor {
  intercept(): Observable<unknown> {
    return of('cached');
  }
}

@Controller()
class InterceptedController {
  @WebSocketRoute('timed')
  @UseInterceptors(TimingInterceptor)
  async timed(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) {
      events.push(`message:${frame.readText()}`);
      marks[`message:${frame.readText()}`] = performance.now();
      await session.send(frame);
    }
    events.push('method:returned');
    return 'done';
  }

  @WebSocketRoute('locked')
  @UseInterceptors(RefusingInterceptor)
  locked() {
    hit('locked');
  }

  @WebSocketRoute('cached')
  @UseInterceptors(CacheInterceptor)
  cached() {
    hit('cached');
  }
}

// ---------------------------------------------------------------------------
// Parameters and pipes

@Injectable()
class UserGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const request = requestOf(context);
    request.user = { name: String(request.headers['x-user']) };
    return true;
  }
}

const CurrentUser = createParamDecorator((_data: unknown, context: ExecutionContext) => requestOf(context).user);

class RoomQuery {
  room!: string;

  static validate(value: Record<string, unknown>): boolean {
    return typeof value.room === 'string' && value.room.length > 0;
  }
}

/** A tiny ValidationPipe: a parameter whose class has `validate()` is checked and made an instance of it. */
class TinyValidationPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    const metatype = metadata.metatype as (typeof RoomQuery & { validate?: unknown }) | undefined;
    if (typeof metatype?.validate !== 'function') return value;
    if (!metatype.validate(value as Record<string, unknown>)) throw new BadRequestException(['room must be a non-empty string']);
    return Object.assign(new metatype(), value);
  }
}

@Controller()
class ParamsController {
  @WebSocketRoute('params/:id')
  async params(
    @Query('x') x: string,
    @Req() request: UpgradeRequest,
    @Param('id', ParseIntPipe) id: number,
    @Headers('x-y') y: string,
    @WsSession() session: DefaultWebSocketServerSession,
    @Param() params: Record<string, string>,
    @Query() query: Record<string, string>,
    @Headers() headers: IncomingHttpHeaders,
  ) {
    hit('params');
    await session.sendSerialized({
      id,
      idType: typeof id,
      x,
      y,
      url: request.url,
      requestHeader: request.headers['x-y'],
      params: { ...params },
      query: { ...query },
      allHeadersY: headers['x-y'],
      path: session.call.path,
    });
  }

  @WebSocketRoute('me')
  @UseGuards(UserGuard)
  async me(@WsSession() session: DefaultWebSocketServerSession, @CurrentUser() user: { name: string }) {
    await session.send(`hello ${user.name}`);
  }

  @WebSocketRoute('rooms')
  async rooms(@Query() query: RoomQuery, @WsSession() session: DefaultWebSocketServerSession) {
    hit('rooms');
    await session.sendSerialized({ isRoomQuery: query instanceof RoomQuery, room: query.room });
  }

  @WebSocketRoute('plain/:name')
  async plain(session: DefaultWebSocketServerSession) {
    await session.send(`plain ${session.call.params.name}`);
  }
}

// ---------------------------------------------------------------------------
// Logging

class RecordingLogger implements LoggerService {
  errors: unknown[][] = [];
  log() {}
  warn() {}
  debug() {}
  verbose() {}
  fatal(...args: unknown[]) {
    this.errors.push(args);
  }
  error(...args: unknown[]) {
    this.errors.push(args);
  }
}

@Controller()
class LoggedController {
  @WebSocketRoute('fails')
  async fails(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new Error('logged once');
  }

  @WebSocketRoute('closes')
  async closes(session: DefaultWebSocketServerSession) {
    await session.send('started');
    throw new WebSocketCloseException(4001, 'nope');
  }
}

// ---------------------------------------------------------------------------
// Clients

const clients = new ClientTracker();

interface Refusal {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Opens a `ws` client that must be refused; resolves with the HTTP answer it got instead of a 101. */
function refused(url: string, headers: Record<string, string> = {}): Promise<Refusal> {
  const ws = clients.track(new WebSocket(url, { headers }));
  return within(
    new Promise<Refusal>((resolve, reject) => {
      ws.once('open', () => reject(new Error(`Upgrade of ${url} was accepted`)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.once('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString() }),
        );
      });
    }),
    5000,
    `the refusal of ${url}`,
  );
}

const json = (refusal: Refusal) => {
  expect(refusal.headers['content-type']).toMatch(/^application\/json/);
  return JSON.parse(refusal.body) as unknown;
};

/** Sends a raw upgrade; expects `status` as the very first bytes back, no frame after it, and TCP to end. */
async function rawRefusal(port: number, path: string, status: number, headers: Record<string, string> = {}) {
  const { client, response } = await RawClient.open(port, path, headers);
  clients.track(client);
  expect(response.status).toBe(status);
  expect(await client.waitForEnd()).toBe(true);
  expect(await client.readAll()).toEqual([]);
  return response;
}

beforeEach(() => {
  clearRuns();
  guardSaw = undefined;
  filterSaw = [];
  lastSession = undefined;
  events = [];
  marks = {};
  sessionOver = deferred();
  gate = newGate();
});
afterEach(() => clients.dropAll());

describe.each(PLATFORMS)('on %s', (platform: Platform) => {
  describe('guards', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([GuardedController, ClassGuardedController], {}, [], { platform })));
    afterAll(() => t.close());

    const connect = async (path: string, headers: Record<string, string> = {}) =>
      clients.track(await WsClient.connect(t.url(path), undefined, { headers }));

    it('gives a method guard the upgrade request as an HTTP request', async () => {
      const client = await connect('/inspect/42?token=secret&x=1', { 'X-Probe': 'probe' });
      expect(await client.nextText()).toBe('in');
      expect(guardSaw).toEqual({
        type: 'http',
        url: '/inspect/42?token=secret&x=1',
        header: 'probe',
        query: { token: 'secret', x: '1' },
        params: { id: '42' },
        handler: GuardedController.prototype.inspect,
        class: GuardedController,
      });
    });

    it('answers 403 with Nest’s JSON body when a guard returns false, and never runs the method', async () => {
      const refusal = await refused(t.url('/inspect/42?token=wrong'));
      expect(refusal.status).toBe(403);
      expect(json(refusal)).toEqual(FORBIDDEN_BODY);
      expect(guardSaw).toMatchObject({ query: { token: 'wrong' } });
      expect(runs('inspect')).toBe(0);
    });

    it('sends no 101 to a client a guard refuses: the refusal is the first status line, then TCP ends', async () => {
      const response = await rawRefusal(t.port, '/inspect/1', 403);
      expect(JSON.parse(response.body)).toEqual(FORBIDDEN_BODY);
      expect(response.headers.upgrade).toBeUndefined();
      expect(response.headers['sec-websocket-accept']).toBeUndefined();
      expect(runs('inspect')).toBe(0);
    });

    it('lets a client with `Authorization: Bearer x` in', async () => {
      const client = await connect('/bearer', { Authorization: 'Bearer x' });
      expect(await client.nextText()).toBe('welcome');
      expect(runs('bearer')).toBe(1);
    });

    it('answers 401 with UnauthorizedException’s JSON body to a client without credentials, without a 101', async () => {
      const refusal = await refused(t.url('/bearer'), { Authorization: 'Bearer y' });
      expect(refusal.status).toBe(401);
      expect(json(refusal)).toEqual({ message: 'Unauthorized', statusCode: 401 });
      const raw = await rawRefusal(t.port, '/bearer', 401);
      expect(JSON.parse(raw.body)).toEqual({ message: 'Unauthorized', statusCode: 401 });
      expect(runs('bearer')).toBe(0);
    });

    it('runs a Reflector roles guard against @SetMetadata on the method', async () => {
      const client = await connect('/admin', { 'X-Role': 'admin' });
      expect(await client.nextText()).toBe('admin');
      const refusal = await refused(t.url('/admin'), { 'X-Role': 'guest' });
      expect(refusal.status).toBe(403);
      expect(runs('admin')).toBe(1);
    });

    it('answers a custom HttpException with its own status and body', async () => {
      const refusal = await refused(t.url('/pay'));
      expect(refusal.status).toBe(402);
      expect(json(refusal)).toEqual({ code: 'PAYMENT_REQUIRED', detail: 'top up first' });
      expect(runs('pay')).toBe(0);
    });

    it('runs a controller guard on every method, with a method guard after it', async () => {
      const lounge = await connect('/members/lounge', { 'X-Class-Key': 'k' });
      expect(await lounge.nextText()).toBe('lounge');
      expect((await refused(t.url('/members/lounge'))).status).toBe(403);
      // Both guards must pass: the controller's key and the method's role.
      expect((await refused(t.url('/members/vip'), { 'X-Role': 'vip' })).status).toBe(403);
      expect((await refused(t.url('/members/vip'), { 'X-Class-Key': 'k', 'X-Role': 'guest' })).status).toBe(403);
      const vip = await connect('/members/vip', { 'X-Class-Key': 'k', 'X-Role': 'vip' });
      expect(await vip.nextText()).toBe('vip');
      expect(runs('lounge')).toBe(1);
      expect(runs('vip')).toBe(1);
    });

    it('waits for an async guard', async () => {
      const client = await connect('/async', { 'X-Pass': 'yes' });
      expect(await client.nextText()).toBe('late but fine');
      expect((await refused(t.url('/async'), { 'X-Pass': 'no' })).status).toBe(403);
      expect(runs('async')).toBe(1);
    });

    it('does not run the method for a client that left while an async guard ran, and keeps serving', async () => {
      const socket = tcpConnect(t.port, '127.0.0.1');
      clients.track(socket);
      socket.on('error', () => undefined);
      socket.write(
        'GET /gate HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      );
      const serverSocket = await within(gate.entered.promise, 5000, 'the guard to start');
      const serverSawEnd = new Promise((resolve) => {
        if (serverSocket.readableEnded || serverSocket.destroyed) resolve(undefined);
        serverSocket.once('end', resolve);
        serverSocket.once('close', resolve);
      });
      socket.destroy();
      await within(serverSawEnd, 5000, 'the server to see the client leave');
      gate.release.resolve();
      await within(gate.over.promise, 5000, 'the upgrade pipeline to end');
      expect(runs('gate')).toBe(0);
      // The app still serves, the same route included (the gate is open now).
      const client = await connect('/gate');
      expect(await client.nextText()).toBe('through');
      expect(runs('gate')).toBe(1);
    });

    it('answers 500 with Nest’s JSON body when a guard throws a plain Error', async () => {
      const refusal = await refused(t.url('/broken'));
      expect(refusal.status).toBe(500);
      expect(json(refusal)).toEqual(INTERNAL_BODY);
      await rawRefusal(t.port, '/broken', 500);
      expect(runs('broken')).toBe(0);
    });
  });

  describe('global guards', () => {
    let t: TestApp;
    beforeAll(
      async () =>
        (t = await startApp([GloballyGuardedController], {}, [{ provide: APP_GUARD, useClass: AppGuard }], {
          platform,
          configure: (app) => app.useGlobalGuards(new UseGlobalGuardsGuard()),
        })),
    );
    afterAll(() => t.close());

    it('lets a client through both global guards', async () => {
      const client = clients.track(await WsClient.connect(t.url('/open'), undefined, { headers: { 'X-G1': 'ok', 'X-G2': 'ok' } }));
      expect(await client.nextText()).toBe('open');
      expect(runs('open')).toBe(1);
    });

    it('runs a guard given to app.useGlobalGuards() before the handshake', async () => {
      const refusal = await refused(t.url('/open'), { 'X-G2': 'ok' });
      expect(refusal.status).toBe(401);
      expect(json(refusal)).toEqual({ message: 'global guard', error: 'Unauthorized', statusCode: 401 });
      await rawRefusal(t.port, '/open', 401, { 'X-G2': 'ok' });
      expect(runs('open')).toBe(0);
    });

    it('runs an APP_GUARD provider before the handshake', async () => {
      const refusal = await refused(t.url('/open'), { 'X-G1': 'ok' });
      expect(refusal.status).toBe(403);
      expect(json(refusal)).toEqual({ message: 'app guard', error: 'Forbidden', statusCode: 403 });
      await rawRefusal(t.port, '/open', 403, { 'X-G1': 'ok' });
      expect(runs('open')).toBe(0);
    });
  });

  describe('exception filters', () => {
    let t: TestApp;
    beforeAll(
      async () =>
        (t = await startApp([FilterController, FilteredClassController], {}, [{ provide: APP_FILTER, useClass: AppFilter }], {
          platform,
          configure: (app) => app.useGlobalFilters(new GlobalFilter(app.get(HttpAdapterHost))),
        })),
    );
    afterAll(() => t.close());

    /** Connects, waits for the method's first message, and returns the close the client saw. */
    const closeOf = async (path: string) => {
      const client = clients.track(await WsClient.connect(t.url(path)));
      expect(await client.nextText()).toBe('started');
      return client.waitClosed();
    };

    describe('before the 101', () => {
      it('hands a guard’s error to a method @UseFilters() filter in an http host; its answer is what the client gets', async () => {
        const refusal = await refused(t.url('/filtered-guard'));
        expect(refusal.status).toBe(418);
        expect(json(refusal)).toEqual({ teapot: true, cause: 'no way' });
        expect(filterSaw).toEqual([{ filter: 'teapot', type: 'http', error: 'no way' }]);
        await rawRefusal(t.port, '/filtered-guard', 418);
        expect(runs('filtered-guard')).toBe(0);
      });

      it('hands a pipe’s error to the filters', async () => {
        const refusal = await refused(t.url('/filtered-pipe/abc'));
        expect(refusal.status).toBe(418);
        expect(json(refusal)).toEqual({ teapot: true, cause: 'Validation failed (numeric string is expected)' });
        expect(filterSaw).toEqual([{ filter: 'teapot', type: 'http', error: 'Validation failed (numeric string is expected)' }]);
        expect(runs('filtered-pipe')).toBe(0);
      });

      it('applies a controller @UseFilters() filter', async () => {
        const refusal = await refused(t.url('/teapots/guarded'));
        expect(refusal.status).toBe(418);
        expect(json(refusal)).toEqual({ teapot: true, cause: 'class filter' });
        expect(runs('teapots-guarded')).toBe(0);
      });

      it('answers 500 when the filter itself throws, instead of leaving the client without an answer', async () => {
        const refusal = await refused(t.url('/broken-filter'));
        expect(refusal.status).toBe(500);
        expect(json(refusal)).toEqual({ statusCode: 500, message: 'Internal server error' });
        await rawRefusal(t.port, '/broken-filter', 500);
        expect(runs('broken-filter')).toBe(0);
      });

      it(`answers with a filter written for ${platform}’s own response object`, async () => {
        const path = platform === 'express' ? '/express-filter' : '/fastify-filter';
        const refusal = await refused(t.url(path));
        expect(refusal.status).toBe(418);
        expect(json(refusal)).toEqual({ [platform]: true, cause: `${platform} only` });
        expect(filterSaw).toEqual([{ filter: platform, type: 'http', error: `${platform} only` }]);
        await rawRefusal(t.port, path, 418);
      });

      it('applies a filter given to app.useGlobalFilters()', async () => {
        const refusal = await refused(t.url('/global-before'));
        expect(refusal.status).toBe(451);
        expect(json(refusal)).toEqual({ global: true });
        expect(filterSaw).toEqual([{ filter: 'global', type: 'http', error: 'global before' }]);
        expect(runs('global-before')).toBe(0);
      });

      it('applies an APP_FILTER provider', async () => {
        const refusal = await refused(t.url('/app-before'));
        expect(refusal.status).toBe(409);
        expect(json(refusal)).toEqual({ app: true });
        expect(filterSaw).toEqual([{ filter: 'app', type: 'http', error: 'app before' }]);
        expect(runs('app-before')).toBe(0);
      });
    });

    describe('after the 101', () => {
      it('closes with 1011 when the method throws', async () => {
        expect(await closeOf('/throws')).toEqual({ code: 1011, reason: 'Internal server error' });
        expect(runs('throws')).toBe(1);
      });

      it('closes with a WebSocketCloseException’s code and reason', async () => {
        expect(await closeOf('/close-exception')).toEqual({ code: 4001, reason: 'nope' });
      });

      it('closes with 1008 and the message for a 4xx HttpException', async () => {
        expect(await closeOf('/http-4xx')).toEqual({ code: 1008, reason: 'bad input' });
      });

      it('hands the error to a method filter in a ws host whose client is the session; its CloseReason is the close', async () => {
        expect(await closeOf('/filter-after')).toEqual({ code: 4002, reason: 'from filter' });
        expect(lastSession).toBeDefined();
        expect(filterSaw).toEqual([{ filter: 'close-code', type: 'ws', clientIsSession: true, error: 'picked by filter' }]);
      });

      it('closes with 1011 when the filter returns nothing', async () => {
        expect(await closeOf('/silent-after')).toEqual({ code: 1011, reason: 'Internal server error' });
        expect(filterSaw).toEqual([{ filter: 'silent', type: 'ws', error: 'filter said nothing' }]);
      });

      it('hands the error to a global filter in a ws host; its CloseReason is the close', async () => {
        expect(await closeOf('/global-after')).toEqual({ code: 4100, reason: 'global filter' });
        expect(filterSaw).toEqual([{ filter: 'global', type: 'ws', clientIsSession: true, error: 'global after' }]);
      });

      it('hands the error to an APP_FILTER provider in a ws host', async () => {
        expect(await closeOf('/app-after')).toEqual({ code: 4200, reason: 'app filter' });
        expect(filterSaw).toEqual([{ filter: 'app', type: 'ws', error: 'app after' }]);
      });
    });
  });

  describe('error logging', () => {
    let t: TestApp;
    const logger = new RecordingLogger();
    beforeAll(
      async () =>
        (t = await startApp([LoggedController], {}, [], { platform, logger: true, configure: (app) => app.useLogger(logger) })),
    );
    afterAll(() => t.close());
    beforeEach(() => (logger.errors = []));

    /** Runs one session to its end, server side included. */
    const runSession = async (path: string) => {
      const client = clients.track(await WsClient.connect(t.url(path)));
      expect(await client.nextText()).toBe('started');
      const closed = await client.waitClosed();
      const sessions = t.app.get(WebSocketSessions);
      await within(
        (async () => {
          while (sessions.size > 0) await sleep(10);
        })(),
        5000,
        'the session to end on the server',
      );
      return closed;
    };

    it('logs a failing session once, at error level', async () => {
      expect((await runSession('/fails')).code).toBe(1011);
      expect(logger.errors).toHaveLength(1);
      expect(String(logger.errors[0][0])).toContain('logged once');
    });

    it('logs no error for a WebSocketCloseException', async () => {
      expect(await runSession('/closes')).toEqual({ code: 4001, reason: 'nope' });
      expect(logger.errors).toEqual([]);
    });
  });

  describe('interceptors', () => {
    let t: TestApp;
    beforeAll(
      async () =>
        (t = await startApp([InterceptedController], {}, [], {
          platform,
          configure: (app) => app.useGlobalInterceptors(new GlobalInterceptor()),
        })),
    );
    afterAll(() => t.close());

    it('wraps the whole session: next.handle() emits when the method returns, finalize runs when the session ends', async () => {
      const client = clients.track(await WsClient.connect(t.url('/timed')));
      client.ws.send('a');
      expect(await client.nextText()).toBe('a');
      client.ws.send('b');
      expect(await client.nextText()).toBe('b');
      // Mid-session: the interceptors have run their pre-part and nothing else.
      expect(events).toEqual(['global:before', 'method:before', 'message:a', 'message:b']);
      client.ws.close(1000);
      await within(sessionOver.promise, 5000, 'the interceptor to finalize');
      expect(await client.waitClosed()).toMatchObject({ code: 1000 });
      const at = (event: string) => {
        const index = events.indexOf(event);
        expect(index).toBeGreaterThanOrEqual(0);
        return index;
      };
      expect(at('method:returned')).toBeLessThan(at('method:emit:done'));
      expect(at('method:emit:done')).toBeLessThan(at('global:emit:done'));
      expect(at('method:emit:done')).toBeLessThan(at('method:finalize'));
      await within(
        (async () => {
          while (!events.includes('global:finalize')) await sleep(10);
        })(),
        5000,
        'the global interceptor to finalize',
      );
      expect(events.filter((event) => event.startsWith('message:'))).toEqual(['message:a', 'message:b']);
    });

    it('can time the session: start before next.handle(), end in finalize, the messages in between', async () => {
      const client = clients.track(await WsClient.connect(t.url('/timed')));
      client.ws.send('x');
      expect(await client.nextText()).toBe('x');
      client.ws.close(1000);
      await within(sessionOver.promise, 5000, 'the interceptor to finalize');
      expect(marks.end).toBeGreaterThanOrEqual(marks.start);
      expect(marks['message:x']).toBeGreaterThanOrEqual(marks.start);
      expect(marks.end).toBeGreaterThanOrEqual(marks['message:x']);
    });

    it('refuses before the 101 when an interceptor throws an HttpException', async () => {
      const refusal = await refused(t.url('/locked'));
      expect(refusal.status).toBe(423);
      expect(json(refusal)).toEqual({ statusCode: 423, message: 'locked by interceptor' });
      await rawRefusal(t.port, '/locked', 423);
      expect(runs('locked')).toBe(0);
    });

    it('answers the upgrade with 200 and the value when an interceptor does not call next.handle()', async () => {
      const refusal = await refused(t.url('/cached'));
      expect(refusal.status).toBe(200);
      expect(refusal.body).toBe('cached');
      const raw = await rawRefusal(t.port, '/cached', 200);
      expect(raw.body).toBe('cached');
      expect(runs('cached')).toBe(0);
    });
  });

  describe('parameters and pipes', () => {
    let t: TestApp;
    beforeAll(
      async () =>
        (t = await startApp([ParamsController], {}, [], {
          platform,
          configure: (app) => app.useGlobalPipes(new TinyValidationPipe()),
        })),
    );
    afterAll(() => t.close());

    const connect = async (path: string, headers: Record<string, string> = {}) =>
      clients.track(await WsClient.connect(t.url(path), undefined, { headers }));

    it('fills @Param, @Query, @Headers, @Req and @WsSession in any order; ParseIntPipe makes a number', async () => {
      const client = await connect('/params/7?x=1&z=2', { 'X-Y': 'why' });
      expect(JSON.parse(await client.nextText())).toEqual({
        id: 7,
        idType: 'number',
        x: '1',
        y: 'why',
        url: '/params/7?x=1&z=2',
        requestHeader: 'why',
        params: { id: '7' },
        query: { x: '1', z: '2' },
        allHeadersY: 'why',
        path: '/params/7',
      });
      expect(runs('params')).toBe(1);
    });

    it('answers 400 without a 101 when a pipe fails, and never runs the method', async () => {
      const refusal = await refused(t.url('/params/seven'));
      expect(refusal.status).toBe(400);
      expect(json(refusal)).toEqual({
        message: 'Validation failed (numeric string is expected)',
        error: 'Bad Request',
        statusCode: 400,
      });
      await rawRefusal(t.port, '/params/seven', 400);
      expect(runs('params')).toBe(0);
    });

    it('feeds a custom param decorator from what a guard put on the request', async () => {
      const client = await connect('/me', { 'X-User': 'ada' });
      expect(await client.nextText()).toBe('hello ada');
    });

    it('runs a global validation pipe on the parameters', async () => {
      const client = await connect('/rooms?room=blue');
      expect(JSON.parse(await client.nextText())).toEqual({ isRoomQuery: true, room: 'blue' });
      const refusal = await refused(t.url('/rooms?room='));
      expect(refusal.status).toBe(400);
      expect(json(refusal)).toEqual({ message: ['room must be a non-empty string'], error: 'Bad Request', statusCode: 400 });
      await rawRefusal(t.port, '/rooms', 400);
      expect(runs('rooms')).toBe(1);
    });

    it('hands the session as first argument to a method with no decorated parameter', async () => {
      const client = await connect('/plain/zed');
      expect(await client.nextText()).toBe('plain zed');
    });
  });
});
