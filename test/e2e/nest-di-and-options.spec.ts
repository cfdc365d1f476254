/**
 * Nest integration end to end: one DI context per session for REQUEST-scoped
 * providers and controllers (REQUEST is the upgrade request, WEBSOCKET_SESSION
 * the session), singletons untouched; module options through forRoot and every
 * forRootAsync flavour, per-route overrides, and invalid options failing startup.
 */
import 'reflect-metadata';
import type { IncomingMessage } from 'node:http';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  Scope,
  type Type,
} from '@nestjs/common';
import { ContextIdFactory, REQUEST, type ContextId, type ContextIdStrategy, type HostComponentInfo } from '@nestjs/core';
import { ConfigModule, ConfigService } from '@nestjs/config';
import {
  WEBSOCKET_SESSION,
  WebSocketRoute,
  WebSocketSessions,
  WebSocketsModule,
  WsSession,
  type DefaultWebSocketServerSession,
  type WebSocketRouteOptions,
  type WebSocketsModuleOptions,
} from 'nest-websocket-routes';
import { eventually } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { initApp, PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { Opcode, RawClient } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();
const track = <T extends RawClient | WsClient>(client: T): T => clients.track(client);
afterEach(() => clients.dropAll());

// ---------------------------------------------------------------- per-session DI

let nextStateId = 0;
let nextScopedControllerId = 0;
let singletonConstructed = 0;
const singletonInstances = new Set<object>();

/** One per session: the id it reports back identifies the instance. */
@Injectable({ scope: Scope.REQUEST })
class SessionState {
  readonly id = ++nextStateId;

  constructor(
    @Inject(REQUEST) readonly request: IncomingMessage,
    @Inject(WEBSOCKET_SESSION) readonly session: DefaultWebSocketServerSession,
  ) {}
}

/** A second REQUEST-scoped consumer of SessionState. */
@Injectable({ scope: Scope.REQUEST })
class SessionAudit {
  constructor(readonly state: SessionState) {}
}

@Controller('di')
class PerSessionController {
  constructor(
    private readonly state: SessionState,
    private readonly audit: SessionAudit,
  ) {}

  @WebSocketRoute('state')
  async report(@WsSession() session: DefaultWebSocketServerSession) {
    const { state } = this;
    await session.sendSerialized({
      id: state.id,
      auditSharesState: this.audit.state === state,
      requestIsUpgradeRequest: state.request === session.call.request,
      url: state.request.url,
      header: state.request.headers['x-client'],
      sessionIsInjected: state.session === session,
    });
    // Later messages: the id this session's instance still has.
    for await (const _frame of session.incoming) await session.send(String(this.state.id));
  }

  /** The same providers serve HTTP requests, where there is no session. */
  @Get('http')
  http() {
    return { id: this.state.id, session: this.state.session ?? null, auditSharesState: this.audit.state === this.state };
  }
}

@Controller({ path: 'scoped', scope: Scope.REQUEST })
class RequestScopedController {
  readonly id = ++nextScopedControllerId;

  @WebSocketRoute()
  async handle(session: DefaultWebSocketServerSession) {
    await session.send(String(this.id));
    for await (const _frame of session.incoming) await session.send(String(this.id));
  }
}

@Controller('singleton')
class SingletonController {
  constructor() {
    singletonConstructed++;
  }

  @WebSocketRoute()
  async handle(session: DefaultWebSocketServerSession) {
    singletonInstances.add(this);
    await session.send('hi');
    for await (const frame of session.incoming) await session.send(frame);
  }
}

/** What a released controller instance looks like from the outside: a WeakRef, and a FinalizationRegistry record. */
const scopedRefs: Array<WeakRef<object>> = [];
const finalized: string[] = [];
const finalization = new FinalizationRegistry<string>((tag) => finalized.push(tag));

@Controller({ path: 'released', scope: Scope.REQUEST })
class ReleasedController {
  @WebSocketRoute()
  async handle(session: DefaultWebSocketServerSession) {
    scopedRefs.push(new WeakRef(this));
    finalization.register(this, `controller of ${String(session.call.query.tag)}`);
    await session.send('ready');
    for await (const frame of session.incoming) await session.send(frame);
  }
}

/** `global.gc` even without `--expose-gc` on the command line (V8 exposes it to new contexts once the flag is set). */
function exposedGc(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === 'function') return existing;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

describe.each(PLATFORMS)('per-session DI (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    singletonConstructed = 0;
    singletonInstances.clear();
    t = await startApp(
      [PerSessionController, RequestScopedController, SingletonController, ReleasedController],
      {},
      [SessionState, SessionAudit],
      { platform },
    );
  });
  afterAll(() => t.close());

  const connect = async (path: string, headers: Record<string, string> = {}) =>
    track(await WsClient.connect(t.url(path), undefined, { headers }));

  it('gives two concurrent sessions two REQUEST-scoped instances, each kept for its whole session', async () => {
    const a = await connect('/di/state?who=a', { 'x-client': 'a' });
    const b = await connect('/di/state?who=b', { 'x-client': 'b' });
    const first = JSON.parse(await a.nextText());
    const second = JSON.parse(await b.nextText());
    expect(first.id).not.toBe(second.id);
    // Both still open: each session keeps its own instance.
    a.ws.send('again');
    b.ws.send('again');
    expect(await a.nextText()).toBe(String(first.id));
    expect(await b.nextText()).toBe(String(second.id));
  });

  it('shares one instance between every REQUEST-scoped consumer of a session', async () => {
    const client = await connect('/di/state');
    expect(JSON.parse(await client.nextText())).toMatchObject({ auditSharesState: true });
  });

  it('injects the upgrade request as REQUEST and the session as WEBSOCKET_SESSION', async () => {
    const client = await connect('/di/state?q=1', { 'x-client': 'header-value' });
    expect(JSON.parse(await client.nextText())).toMatchObject({
      requestIsUpgradeRequest: true,
      url: '/di/state?q=1',
      header: 'header-value',
      sessionIsInjected: true,
    });
  });

  it('still serves HTTP requests with the same REQUEST-scoped providers, WEBSOCKET_SESSION being undefined there', async () => {
    const getState = async () => (await (await fetch(t.httpUrl('/di/http'))).json()) as { id: number };
    const first = await getState();
    const second = await getState();
    expect(first).toMatchObject({ session: null, auditSharesState: true });
    expect(second.id).not.toBe(first.id);
  });

  it('makes one REQUEST-scoped controller instance per session', async () => {
    const before = nextScopedControllerId;
    const sessions = await Promise.all([connect('/scoped'), connect('/scoped'), connect('/scoped')]);
    const ids = await Promise.all(sessions.map((client) => client.nextText()));
    expect(new Set(ids).size).toBe(3);
    expect(nextScopedControllerId - before).toBe(3);
    for (const [i, client] of sessions.entries()) {
      client.ws.send('again');
      expect(await client.nextText()).toBe(ids[i]);
    }
  });

  it('runs a singleton controller with its one instance for every session', async () => {
    const sessions = await Promise.all([connect('/singleton'), connect('/singleton'), connect('/singleton')]);
    for (const client of sessions) expect(await client.nextText()).toBe('hi');
    expect(singletonConstructed).toBe(1);
    expect([...singletonInstances]).toEqual([t.app.get(SingletonController)]);
  });

  it('lets a closed session’s REQUEST-scoped controller be garbage-collected', async () => {
    const gc = exposedGc();
    if (gc === undefined) {
      console.warn('no gc available: release of per-session instances not checked');
      return;
    }
    const tag = `${platform}-${Math.random()}`;
    const refsBefore = scopedRefs.length;
    const client = await connect(`/released?tag=${tag}`);
    expect(await client.nextText()).toBe('ready');
    client.ws.close(1000);
    await client.waitClosed();
    const ref = scopedRefs[refsBefore];
    expect(ref).toBeDefined();
    // WeakRefs hold their target until the current job ends: collect between turns.
    for (let attempt = 0; attempt < 50 && ref.deref() !== undefined; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      gc();
    }
    expect(ref.deref()).toBeUndefined();
    await eventually(() => finalized.includes(`controller of ${tag}`), 'the finalization callback');
  });
});

// ---------------------------------------------------------------- durable providers

let nextTenantStateId = 0;

/** Durable: one instance per tenant (the x-tenant header), shared by that tenant's sessions. */
@Injectable({ scope: Scope.REQUEST, durable: true })
class TenantState {
  readonly id = ++nextTenantStateId;

  constructor(@Inject(REQUEST) readonly payload: { tenant: string }) {}
}

@Controller('tenant')
class TenantController {
  constructor(private readonly state: TenantState) {}

  @WebSocketRoute()
  async handle(session: DefaultWebSocketServerSession) {
    await session.sendSerialized({ id: this.state.id, tenant: this.state.payload.tenant });
  }
}

class TenantStrategy implements ContextIdStrategy<IncomingMessage> {
  private readonly tenants = new Map<string, ContextId>();

  attach(contextId: ContextId, request: IncomingMessage) {
    const tenant = String(request.headers['x-tenant'] ?? 'none');
    let tenantContext = this.tenants.get(tenant);
    if (tenantContext === undefined) {
      tenantContext = ContextIdFactory.create();
      this.tenants.set(tenant, tenantContext);
    }
    const shared = tenantContext;
    return { resolve: (info: HostComponentInfo) => (info.isTreeDurable ? shared : contextId), payload: { tenant } };
  }
}

describe.each(PLATFORMS)('durable providers with a ContextIdStrategy (%s)', (platform) => {
  let t: TestApp;
  beforeAll(async () => {
    ContextIdFactory.apply(new TenantStrategy());
    t = await startApp([TenantController], {}, [TenantState], { platform });
  });
  afterAll(async () => {
    await t.close();
    ContextIdFactory.apply(undefined as unknown as ContextIdStrategy);
  });

  const stateOf = async (tenant: string) => {
    const client = track(await WsClient.connect(t.url('/tenant'), undefined, { headers: { 'x-tenant': tenant } }));
    return JSON.parse(await client.nextText()) as { id: number; tenant: string };
  };

  it('shares one instance between the sessions of a tenant, with the strategy’s payload as REQUEST', async () => {
    const [a1, a2, b1] = [await stateOf('acme'), await stateOf('acme'), await stateOf('globex')];
    expect(a1).toEqual({ id: a2.id, tenant: 'acme' });
    expect(b1.tenant).toBe('globex');
    expect(b1.id).not.toBe(a1.id);
  });
});

// ---------------------------------------------------------------- options

@Controller()
class OptionsController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('big', { maxFrameSize: 4096 })
  async big(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('small', { maxFrameSize: 10 })
  async small(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('pinging', { pingInterval: 50 })
  async pinging(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('impatient', { pingInterval: 50, timeout: 100 })
  async impatient(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

/** The close code a 1024 + `extra` byte message gets, or 0 when it came back as an echo. */
async function closeCodeFor(t: TestApp, path: string, size: number): Promise<number> {
  const client = track(await RawClient.connect(t.port, path));
  client.send({ opcode: Opcode.BINARY, payload: Buffer.alloc(size, 7) });
  const first = await client.readFrame();
  client.destroy();
  if (first === null) throw new Error('connection ended without a frame');
  if (first.opcode === Opcode.BINARY && first.payload.length === size) return 0;
  if (first.opcode !== Opcode.CLOSE) throw new Error(`unexpected frame ${first.opcode}`);
  return first.payload.readUInt16BE(0);
}

/** Proves `maxFrameSize: 1024` is in effect on `/echo`. */
async function expectLimit1024(t: TestApp): Promise<void> {
  expect(await closeCodeFor(t, '/echo', 1024)).toBe(0);
  expect(await closeCodeFor(t, '/echo', 1025)).toBe(1009);
}

@Injectable()
class WsOptionsFactory {
  create(): WebSocketsModuleOptions {
    return { maxFrameSize: 1024 };
  }
}

@Module({ providers: [WsOptionsFactory], exports: [WsOptionsFactory] })
class WsOptionsModule {}

@Module({ imports: [WebSocketsModule.forRoot({ isGlobal: true, maxFrameSize: 1024 })] })
class FeatureModuleWithGlobalWebSockets {}

@Injectable()
class RegistryUser {
  constructor(readonly sessions: WebSocketSessions) {}
}

/** A module that does not import WebSocketsModule, yet injects its registry. */
@Module({ providers: [RegistryUser], exports: [RegistryUser] })
class RegistryUserModule {}

const wsConfig = () => ConfigModule.forRoot({ load: [() => ({ ws: { maxFrameSize: 1024 } })], ignoreEnvFile: true });

describe('module options', () => {
  let t: TestApp | undefined;
  afterEach(async () => {
    // Clients first: a client that never answers the server's Close would hold the shutdown for the close timeout.
    clients.dropAll();
    await t?.close();
    t = undefined;
  });

  it('forRoot: a message over maxFrameSize closes 1009', async () => {
    t = await startApp([OptionsController], { maxFrameSize: 1024 });
    await expectLimit1024(t);
  });

  it('forRootAsync: useFactory with ConfigService from @nestjs/config', async () => {
    t = await startApp([OptionsController], {}, [], {
      imports: [
        await wsConfig(),
        WebSocketsModule.forRootAsync({
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService): WebSocketsModuleOptions => ({
            maxFrameSize: config.getOrThrow<number>('ws.maxFrameSize'),
          }),
        }),
      ],
    });
    await expectLimit1024(t);
  });

  it('forRootAsync: useClass', async () => {
    t = await startApp([OptionsController], {}, [], { imports: [WebSocketsModule.forRootAsync({ useClass: WsOptionsFactory })] });
    await expectLimit1024(t);
  });

  it('forRootAsync: useExisting', async () => {
    t = await startApp([OptionsController], {}, [], {
      imports: [WebSocketsModule.forRootAsync({ imports: [WsOptionsModule], useExisting: WsOptionsFactory })],
    });
    await expectLimit1024(t);
  });

  it('isGlobal: true by default, so modules that do not import WebSocketsModule inject the registry; false keeps it to the importer', async () => {
    expect(WebSocketsModule.forRoot().global).toBe(true);
    expect(WebSocketsModule.forRoot({ isGlobal: false }).global).toBe(false);
    expect(WebSocketsModule.forRootAsync({ isGlobal: false, useFactory: () => ({}) }).global).toBe(false);
    t = await startApp([OptionsController], {}, [], { imports: [WebSocketsModule.forRoot({ maxFrameSize: 1024 }), RegistryUserModule] });
    expect(t.app.get(RegistryUser).sessions).toBe(t.app.get(WebSocketSessions));
    await expectLimit1024(t);
    await t.close();
    t = undefined;
    const local = startApp([OptionsController], {}, [], { imports: [WebSocketsModule.forRoot({ isGlobal: false }), RegistryUserModule] });
    await expect(local).rejects.toThrow(/WebSocketSessions/);
  });

  it('isGlobal: a global WebSocketsModule imported by a feature module still applies its options', async () => {
    t = await startApp([OptionsController], {}, [], { imports: [FeatureModuleWithGlobalWebSockets] });
    await expectLimit1024(t);
  });

  it('per route: maxFrameSize overrides the module option both ways', async () => {
    t = await startApp([OptionsController], { maxFrameSize: 1024 });
    expect(await closeCodeFor(t, '/big', 4096)).toBe(0);
    expect(await closeCodeFor(t, '/big', 4097)).toBe(1009);
    expect(await closeCodeFor(t, '/small', 10)).toBe(0);
    expect(await closeCodeFor(t, '/small', 11)).toBe(1009);
  });

  it('per route: pingInterval makes the session ping though the module sends none', async () => {
    t = await startApp([OptionsController], { pingInterval: 0 });
    const client = track(await RawClient.connect(t.port, '/pinging'));
    const ping = await client.readFrame();
    expect(ping).toMatchObject({ opcode: Opcode.PING, fin: true });
    client.send({ opcode: Opcode.PONG, payload: ping!.payload });
    expect((await client.readFrame())?.opcode).toBe(Opcode.PING);
  });

  it('per route: timeout closes a silent client with 1011 though the module waits a minute', async () => {
    t = await startApp([OptionsController], { timeout: 60_000 });
    const client = track(await RawClient.connect(t.port, '/impatient'));
    expect((await client.readFrame())?.opcode).toBe(Opcode.PING);
    expect((await client.readClose())?.code).toBe(1011);
  });
});

function controllerWith(options: WebSocketRouteOptions): Type {
  @Controller()
  class BadRouteController {
    @WebSocketRoute('bad', options)
    handle() {
      return undefined;
    }
  }
  return BadRouteController;
}


const INVALID: Array<[WebSocketsModuleOptions, string]> = [
  [{ maxFrameSize: 0 }, 'maxFrameSize'],
  [{ pingInterval: -1 }, 'pingInterval'],
  [{ timeout: 1.5 }, 'timeout'],
  [{ maxFrameSize: '1024' as unknown as number }, 'maxFrameSize'],
];

describe('invalid options fail at startup', () => {
  it.each(INVALID)('forRoot(%j) names %s', async (options, name) => {
    await expect(initApp([OptionsController], [WebSocketsModule.forRoot(options)])).rejects.toThrow(`"${name}"`);
  });

  it.each(INVALID)('forRootAsync resolving %j names %s', async (options, name) => {
    await expect(
      initApp([OptionsController], [WebSocketsModule.forRootAsync({ useFactory: async () => options })]),
    ).rejects.toThrow(`"${name}"`);
  });

  it.each(INVALID)('@WebSocketRoute(path, %j) names %s and the route', async (options, name) => {
    const init = initApp([controllerWith(options)]);
    await expect(init).rejects.toThrow(`"${name}"`);
    await expect(init).rejects.toThrow('BadRouteController.handle');
  });
});
