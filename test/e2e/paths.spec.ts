/**
 * WebSocket route paths compose exactly as an HTTP GET route's on the same
 * controller: controller prefix, global prefix and its exclusions, RouterModule
 * paths, URI versioning. Each case puts a GET probe beside the WebSocket route
 * and checks both live under the same prefix. Also: mapped-route logs,
 * collisions failing startup, 426 on plain GETs, HTTP routes sharing a path.
 */
import 'reflect-metadata';
import {
  Controller,
  Get,
  Module,
  Param,
  Version,
  VERSION_NEUTRAL,
  VersioningType,
  type DynamicModule,
  type INestApplication,
  type LoggerService,
  type Type,
} from '@nestjs/common';
import { RouterModule } from '@nestjs/core';
import { WebSocketRoute, WebSocketsModule, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { initApp, PLATFORMS, startApp, type Platform, type TestApp } from '../support/nest-app.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();

/** What every WebSocket route here answers first: which handler took it, and with which params. */
async function hello(name: string, session: DefaultWebSocketServerSession) {
  await session.sendSerialized({ name, route: session.call.route, params: session.call.params, protocol: session.call.protocol ?? null });
  for await (const frame of session.incoming) await session.send(frame);
}

@Controller('things')
class ThingsController {
  @Get('probe')
  probe() {
    return 'things probe';
  }

  @WebSocketRoute('ws')
  ws(session: DefaultWebSocketServerSession) {
    return hello('ThingsController.ws', session);
  }

  @Get(':id/probe')
  probeParam(@Param('id') id: string) {
    return `thing ${id}`;
  }

  @WebSocketRoute(':id/ws')
  wsParam(session: DefaultWebSocketServerSession) {
    return hello('ThingsController.wsParam', session);
  }

  @Get('both')
  bothHttp() {
    return 'an HTTP answer';
  }

  @WebSocketRoute('both')
  bothWs(session: DefaultWebSocketServerSession) {
    return hello('ThingsController.bothWs', session);
  }
}

@Controller('health')
class HealthController {
  @Get('probe')
  probe() {
    return 'health probe';
  }

  @WebSocketRoute('ws')
  ws(session: DefaultWebSocketServerSession) {
    return hello('HealthController.ws', session);
  }
}

@Controller('rooms/:org')
class AdminRoomsController {
  @Get(':room/probe')
  probe(@Param('org') org: string, @Param('room') room: string) {
    return `${org}/${room}`;
  }

  @WebSocketRoute(':room/ws')
  ws(session: DefaultWebSocketServerSession) {
    return hello('AdminRoomsController.ws', session);
  }
}

@Module({ controllers: [AdminRoomsController] })
class AdminModule {}

@Controller({ path: 'versioned', version: '1' })
class VersionedController {
  @Get('probe')
  probe() {
    return 'v1 probe';
  }

  @WebSocketRoute('ws')
  ws(session: DefaultWebSocketServerSession) {
    return hello('VersionedController.ws', session);
  }

  @Version('2')
  @Get('probe2')
  probe2() {
    return 'v2 probe';
  }

  @Version('2')
  @WebSocketRoute('ws2')
  ws2(session: DefaultWebSocketServerSession) {
    return hello('VersionedController.ws2', session);
  }

  @Version(['4', VERSION_NEUTRAL])
  @Get('probe-many')
  probeMany() {
    return 'many probe';
  }

  @Version(['4', VERSION_NEUTRAL])
  @WebSocketRoute('ws-many')
  wsMany(session: DefaultWebSocketServerSession) {
    return hello('VersionedController.wsMany', session);
  }
}

@Controller('unversioned')
class UnversionedController {
  @Get('probe')
  probe() {
    return 'default version probe';
  }

  @WebSocketRoute('ws')
  ws(session: DefaultWebSocketServerSession) {
    return hello('UnversionedController.ws', session);
  }
}

@Controller({ path: 'health', version: '1' })
class VersionedHealthController {
  @Get('probe')
  probe() {
    return 'v1 health probe';
  }

  @WebSocketRoute('ws')
  ws(session: DefaultWebSocketServerSession) {
    return hello('VersionedHealthController.ws', session);
  }
}

@Controller(['one', 'two'])
class TwoPathsController {
  @Get('probe')
  probe() {
    return 'two paths probe';
  }

  @WebSocketRoute('ws')
  ws(session: DefaultWebSocketServerSession) {
    return hello('TwoPathsController.ws', session);
  }
}

/** An HTTP route and a WebSocket route on the same path shape with other param names. */
@Controller('named')
class ParamNamesController {
  @Get(':id/thing')
  thing(@Param('id') id: string) {
    return `thing ${id}`;
  }

  @WebSocketRoute(':name/thing')
  ws(session: DefaultWebSocketServerSession) {
    return hello('ParamNamesController.ws', session);
  }
}

/** Collects what Nest's Logger is told. */
class CapturingLogger implements LoggerService {
  readonly messages: string[] = [];
  log(message: unknown) {
    this.messages.push(String(message));
  }
  error(message: unknown) {
    this.messages.push(String(message));
  }
  warn(message: unknown) {
    this.messages.push(String(message));
  }
}

async function get(t: TestApp, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(t.httpUrl(path));
  return { status: response.status, body: await response.text() };
}

async function connect(t: TestApp, path: string, protocols?: string | string[]): Promise<WsClient> {
  return clients.track(await WsClient.connect(t.url(path), protocols));
}

/** Connects to `path` and returns the handler's first message. */
async function helloAt(t: TestApp, path: string, protocols?: string | string[]) {
  const client = await connect(t, path, protocols);
  return JSON.parse(await client.nextText()) as { name: string; route: string; params: Record<string, string>; protocol: string | null };
}

/** The HTTP probe answers at `http` and not at `notHttp`; the WebSocket route connects at `ws` and not at `notWs`. */
async function expectServed(
  t: TestApp,
  at: { http: string; body: string; notHttp: string; ws: string; name: string; notWs: string },
): Promise<void> {
  expect(await get(t, at.http)).toEqual({ status: 200, body: at.body });
  expect((await get(t, at.notHttp)).status).toBe(404);
  expect((await helloAt(t, at.ws)).name).toBe(at.name);
  await expect(connect(t, at.notWs)).rejects.toThrow('Upgrade refused with 404');
}

describe.each(PLATFORMS)('paths (%s)', (platform: Platform) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    clients.dropAll();
    await t?.close();
    t = undefined;
  });

  const start = (controllers: Type[], configure?: (app: INestApplication) => void, imports?: Array<Type | DynamicModule>) =>
    startApp(controllers, {}, [], { platform, configure, imports });

  it('composes the controller prefix', async () => {
    t = await start([ThingsController]);
    await expectServed(t, {
      http: '/things/probe',
      body: 'things probe',
      notHttp: '/probe',
      ws: '/things/ws',
      name: 'ThingsController.ws',
      notWs: '/ws',
    });
  });

  it('puts the global prefix in front, as for GET routes, and logs each mapped route', async () => {
    const logger = new CapturingLogger();
    t = await start([ThingsController], (app) => {
      app.useLogger(logger);
      app.setGlobalPrefix('api');
    });
    await expectServed(t, {
      http: '/api/things/probe',
      body: 'things probe',
      notHttp: '/things/probe',
      ws: '/api/things/ws',
      name: 'ThingsController.ws',
      notWs: '/things/ws',
    });
    expect(logger.messages).toEqual(
      expect.arrayContaining([
        'Mapped {/api/things/ws, WS} route (ThingsController.ws)',
        'Mapped {/api/things/:id/ws, WS} route (ThingsController.wsParam)',
        'Mapped {/api/things/both, WS} route (ThingsController.bothWs)',
      ]),
    );
  });

  it('leaves paths excluded from the global prefix without it', async () => {
    t = await start([ThingsController, HealthController], (app) =>
      app.setGlobalPrefix('api', { exclude: ['health/ws', 'health/probe'] }),
    );
    await expectServed(t, {
      http: '/health/probe',
      body: 'health probe',
      notHttp: '/api/health/probe',
      ws: '/health/ws',
      name: 'HealthController.ws',
      notWs: '/api/health/ws',
    });
    // Routes not excluded keep the prefix.
    expect((await helloAt(t, '/api/things/ws')).name).toBe('ThingsController.ws');
  });

  it('composes the RouterModule path, with path params through every prefix', async () => {
    t = await start([], (app) => app.setGlobalPrefix('api'), [
      WebSocketsModule.forRoot(),
      AdminModule,
      RouterModule.register([{ path: 'admin', module: AdminModule }]),
    ]);
    await expectServed(t, {
      http: '/api/admin/rooms/acme/lobby/probe',
      body: 'acme/lobby',
      notHttp: '/api/rooms/acme/lobby/probe',
      ws: '/api/admin/rooms/acme/lobby/ws',
      name: 'AdminRoomsController.ws',
      notWs: '/api/rooms/acme/lobby/ws',
    });
    expect(await helloAt(t, '/api/admin/rooms/acme%20corp/lobby/ws')).toMatchObject({
      route: '/api/admin/rooms/:org/:room/ws',
      params: { org: 'acme corp', room: 'lobby' },
    });
  });

  it('composes path params of the controller and the method', async () => {
    t = await start([ThingsController], (app) => app.setGlobalPrefix('api'));
    expect(await get(t, '/api/things/42/probe')).toEqual({ status: 200, body: 'thing 42' });
    expect(await helloAt(t, '/api/things/42/ws')).toEqual({
      name: 'ThingsController.wsParam',
      route: '/api/things/:id/ws',
      params: { id: '42' },
      protocol: null,
    });
  });

  it('maps a controller with several paths under each of them', async () => {
    t = await start([TwoPathsController], (app) => app.setGlobalPrefix('api/'));
    for (const prefix of ['/api/one', '/api/two']) {
      expect(await get(t, `${prefix}/probe`)).toEqual({ status: 200, body: 'two paths probe' });
      expect((await helloAt(t, `${prefix}/ws`)).name).toBe('TwoPathsController.ws');
    }
    await expect(connect(t, '/one/ws')).rejects.toThrow('Upgrade refused with 404');
  });

  it('keeps an HTTP route whose path differs only in param names, and upgrades reach the WebSocket route', async () => {
    t = await start([ParamNamesController]);
    expect(await get(t, '/named/7/thing')).toEqual({ status: 200, body: 'thing 7' });
    expect(await helloAt(t, '/named/7/thing')).toMatchObject({ name: 'ParamNamesController.ws', params: { name: '7' } });
  });

  // Express routes ignore case and a trailing slash by default; Fastify's are case-sensitive and strict about the slash.
  it.each([
    ['in upper case', (leaf: string) => `/THINGS/${leaf}`],
    ['with a trailing slash', (leaf: string) => `/things/${leaf}/`],
  ])('takes an upgrade to a path %s exactly when the platform’s HTTP routes take a GET there', async (_case, variant) => {
    t = await start([ThingsController]);
    const http = (await get(t, variant('probe'))).status === 200 ? 'served' : 'not found';
    const ws = await connect(t, variant('ws')).then(
      () => 'served',
      (error: Error) => (error.message === 'Upgrade refused with 404' ? 'not found' : error.message),
    );
    expect({ path: variant('ws'), ws }).toEqual({ path: variant('ws'), ws: http });
  });

  describe('URI versioning', () => {
    const versioned = (app: INestApplication) => app.enableVersioning({ type: VersioningType.URI });

    it('puts the controller version in front', async () => {
      t = await start([VersionedController], versioned);
      await expectServed(t, {
        http: '/v1/versioned/probe',
        body: 'v1 probe',
        notHttp: '/versioned/probe',
        ws: '/v1/versioned/ws',
        name: 'VersionedController.ws',
        notWs: '/versioned/ws',
      });
    });

    it('lets @Version on the method win over the controller version', async () => {
      t = await start([VersionedController], versioned);
      await expectServed(t, {
        http: '/v2/versioned/probe2',
        body: 'v2 probe',
        notHttp: '/v1/versioned/probe2',
        ws: '/v2/versioned/ws2',
        name: 'VersionedController.ws2',
        notWs: '/v1/versioned/ws2',
      });
    });

    it('maps every version of a method, VERSION_NEUTRAL without a version', async () => {
      t = await start([VersionedController], versioned);
      for (const prefix of ['/v4', '']) {
        expect(await get(t, `${prefix}/versioned/probe-many`)).toEqual({ status: 200, body: 'many probe' });
        expect((await helloAt(t, `${prefix}/versioned/ws-many`)).name).toBe('VersionedController.wsMany');
      }
      expect((await get(t, '/v1/versioned/probe-many')).status).toBe(404);
      await expect(connect(t, '/v1/versioned/ws-many')).rejects.toThrow('Upgrade refused with 404');
    });

    it('leaves a versioned path excluded from the global prefix without it, as Nest does', async () => {
      t = await start([VersionedHealthController], (app) => {
        app.setGlobalPrefix('api', { exclude: ['health/ws', 'health/probe'] });
        versioned(app);
      });
      await expectServed(t, {
        http: '/v1/health/probe',
        body: 'v1 health probe',
        notHttp: '/api/v1/health/probe',
        ws: '/v1/health/ws',
        name: 'VersionedHealthController.ws',
        notWs: '/api/v1/health/ws',
      });
    });

    it('uses defaultVersion for unversioned controllers', async () => {
      t = await start([UnversionedController], (app) => app.enableVersioning({ type: VersioningType.URI, defaultVersion: '3' }));
      await expectServed(t, {
        http: '/v3/unversioned/probe',
        body: 'default version probe',
        notHttp: '/unversioned/probe',
        ws: '/v3/unversioned/ws',
        name: 'UnversionedController.ws',
        notWs: '/unversioned/ws',
      });
    });

    it('composes the global prefix, the version and the controller path in Nest’s order', async () => {
      const logger = new CapturingLogger();
      t = await start([VersionedController], (app) => {
        app.useLogger(logger);
        app.setGlobalPrefix('api');
        versioned(app);
      });
      await expectServed(t, {
        http: '/api/v1/versioned/probe',
        body: 'v1 probe',
        notHttp: '/v1/versioned/probe',
        ws: '/api/v1/versioned/ws',
        name: 'VersionedController.ws',
        notWs: '/v1/versioned/ws',
      });
      expect(logger.messages).toContain('Mapped {/api/v2/versioned/ws2, WS} route (VersionedController.ws2)');
    });
  });

  describe('plain HTTP on WebSocket paths', () => {
    it('answers a plain GET on a WebSocket path with 426, prefixes and params included', async () => {
      t = await start([ThingsController], (app) => app.setGlobalPrefix('api'));
      for (const path of ['/api/things/ws', '/api/things/7/ws']) {
        const response = await fetch(t.httpUrl(path));
        expect(response.status).toBe(426);
        expect(response.headers.get('upgrade')?.toLowerCase()).toBe('websocket');
        expect(response.headers.get('sec-websocket-version')).toBe('13');
        await response.text();
      }
    });

    it('keeps the GETs of an HTTP route on the same path, while upgrades reach the WebSocket route', async () => {
      t = await start([ThingsController], (app) => app.setGlobalPrefix('api'));
      expect(await get(t, '/api/things/both')).toEqual({ status: 200, body: 'an HTTP answer' });
      expect((await helloAt(t, '/api/things/both')).name).toBe('ThingsController.bothWs');
      expect(await get(t, '/api/things/both')).toEqual({ status: 200, body: 'an HTTP answer' });
    });
  });
});

// ---------------------------------------------------------------- collisions

@Controller('dup')
class DuplicateA {
  @WebSocketRoute('ws')
  first() {
    return undefined;
  }
}

@Controller('dup')
class DuplicateB {
  @WebSocketRoute('ws')
  second() {
    return undefined;
  }
}

@Controller('a')
class ParamX {
  @WebSocketRoute(':x')
  byX() {
    return undefined;
  }
}

@Controller('a')
class ParamY {
  @WebSocketRoute(':y')
  byY() {
    return undefined;
  }
}

@Controller('proto')
class ProtocolA {
  @WebSocketRoute('ws', { protocol: 'p.v1' })
  one() {
    return undefined;
  }
}

@Controller('proto')
class ProtocolB {
  @WebSocketRoute('ws', { protocol: 'p.v1' })
  two() {
    return undefined;
  }
}

@Controller('proto')
class ProtocolV2 {
  @WebSocketRoute('ws', { protocol: 'p.v2' })
  v2(session: DefaultWebSocketServerSession) {
    return hello('ProtocolV2.v2', session);
  }

  @WebSocketRoute('ws', { protocol: 'p.v1' })
  v1(session: DefaultWebSocketServerSession) {
    return hello('ProtocolV2.v1', session);
  }
}

/** `admin/ws` at the root, and `ws` in a module RouterModule puts under `admin`. */
@Controller('admin')
class RootAdminWs {
  @WebSocketRoute('ws')
  root() {
    return undefined;
  }
}

@Controller()
class ModuleWs {
  @WebSocketRoute('ws')
  routed() {
    return undefined;
  }
}

@Module({ controllers: [ModuleWs] })
class RoutedModule {}


describe('route collisions fail at startup', () => {
  it.each<[string, Type[], string[]]>([
    ['the same path in two controllers', [DuplicateA, DuplicateB], ['DuplicateA.first {/dup/ws}', 'DuplicateB.second {/dup/ws}']],
    ['paths differing only in param names', [ParamX, ParamY], ['ParamX.byX {/a/:x}', 'ParamY.byY {/a/:y}']],
    ['the same path and subprotocol', [ProtocolA, ProtocolB], ['ProtocolA.one {/proto/ws}', 'ProtocolB.two {/proto/ws}', 'p.v1']],
  ])('%s', async (_case, controllers, named) => {
    const init = initApp(controllers);
    await expect(init).rejects.toThrow('WebSocket routes collide');
    for (const part of named) await expect(init).rejects.toThrow(part);
  });

  it('a path that a RouterModule prefix makes equal to another', async () => {
    const init = initApp(
      [RootAdminWs],
      [WebSocketsModule.forRoot(), RoutedModule, RouterModule.register([{ path: 'admin', module: RoutedModule }])],
    );
    await expect(init).rejects.toThrow('RootAdminWs.root {/admin/ws}');
    await expect(init).rejects.toThrow('ModuleWs.routed {/admin/ws}');
  });

  it.each(PLATFORMS)('but the same path with different subprotocols is fine (%s)', async (platform) => {
    const t = await startApp([ProtocolV2], {}, [], { platform });
    try {
      expect(await helloAt(t, '/proto/ws', 'p.v1')).toMatchObject({ name: 'ProtocolV2.v1', protocol: 'p.v1' });
      expect(await helloAt(t, '/proto/ws', 'p.v2')).toMatchObject({ name: 'ProtocolV2.v2', protocol: 'p.v2' });
    } finally {
      clients.dropAll();
      await t.close();
    }
  });
});
