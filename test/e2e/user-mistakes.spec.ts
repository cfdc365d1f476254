/**
 * The mistakes a new user makes first, on a real app: each gets a startup
 * message naming what is wrong and saying what to do, instead of a silent
 * 404, a 1011 or Nest's unresolved-dependency error.
 */
import 'reflect-metadata';
import { once } from 'node:events';
import { Controller, Injectable, Module, Param, Scope, type Type } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { jest } from '@jest/globals';
import {
  WebSocketRoute,
  WebSocketsModule,
  WsSession,
  type DefaultWebSocketServerSession,
  type WebSocketsModuleOptions,
} from 'nest-websocket-routes';
import { WebSocketRoutesMetadataAccessor } from '../../lib/routing/websocket-routes-metadata.accessor.js';
import { initApp, PLATFORMS, startApp, type Platform, type TestApp } from '../support/nest-app.js';
import { ClientTracker } from '../support/client-tracker.js';
import { RecordingLogger } from '../support/recording-logger.js';
import { WsClient } from '../support/ws-client.js';

const clients = new ClientTracker();

// ---------------------------------------------------------------------------
// A route on a provider

@Injectable()
class ChatService {
  @WebSocketRoute('on-provider')
  async join(session: DefaultWebSocketServerSession) {
    await session.send('never mapped');
  }

  helper(): string {
    return 'not a route';
  }
}

/** Its route is inherited: the class still declares it, as Nest would see it on a controller. */
@Injectable()
class ExtendedChatService extends ChatService {}

@Injectable({ scope: Scope.REQUEST })
class ScopedService {
  @WebSocketRoute('on-scoped-provider')
  async join(session: DefaultWebSocketServerSession) {
    await session.send('never mapped');
  }
}

class MadeByFactory {
  @WebSocketRoute('on-factory-provider')
  async join(session: DefaultWebSocketServerSession) {
    await session.send('never mapped');
  }
}

@Controller()
class WorkingController {
  @WebSocketRoute('working')
  async working(session: DefaultWebSocketServerSession) {
    await session.send('mapped');
  }
}

@Controller()
class EchoController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

/** Listed as a controller and as a provider: its route is mapped, so nothing to warn about. */
@Controller()
class AlsoProvidedController {
  @WebSocketRoute('also-provided')
  async route(session: DefaultWebSocketServerSession) {
    await session.send('mapped');
  }
}

const providerRouteWarning = (className: string) =>
  `${className}.join has @WebSocketRoute, but ${className} is a provider, not a controller: the route is not mapped. ` +
  `Routes belong on controllers: put ${className} in a module's \`controllers\` (with @Controller()), not its \`providers\``;

// ---------------------------------------------------------------------------
// Undecorated parameters

@Controller()
class RoomsController {
  @WebSocketRoute('rooms/:room')
  async room(session: DefaultWebSocketServerSession, @Param('room') room: string) {
    await session.send(room);
  }

  @WebSocketRoute('after/:room')
  async after(@Param('room') room: string, session: DefaultWebSocketServerSession) {
    await session.send(room);
  }

  @WebSocketRoute('decorated/:room')
  async decorated(@WsSession() session: DefaultWebSocketServerSession, @Param('room') room: string) {
    await session.send(room);
  }

  @WebSocketRoute('plain')
  async plain(session: DefaultWebSocketServerSession) {
    await session.send('plain');
  }
}

const undecoratedWarning = (method: string, index: number) =>
  `RoomsController.${method}: parameter ${index} has no decorator, so it gets undefined (once one parameter of a route method is ` +
  'decorated, each gets only what its decorator gives). Decorate it with @WsSession() to get the session';

describe.each(PLATFORMS)('startup warnings (%s)', (platform: Platform) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    clients.dropAll();
    await t?.close();
    t = undefined;
  });

  const start = async (controllers: Type[], providers: Parameters<typeof startApp>[2] = []) => {
    const logger = new RecordingLogger();
    t = await startApp(controllers, {}, providers, { platform, logger: true, configure: (app) => app.useLogger(logger) });
    return logger;
  };

  it('names a route on a provider and says routes belong on controllers; other providers, the library and Nest stay quiet', async () => {
    const logger = await start(
      [WorkingController, AlsoProvidedController],
      [
        ChatService,
        ExtendedChatService,
        ScopedService,
        { provide: 'MADE_BY_FACTORY', useFactory: () => new MadeByFactory() },
        { provide: 'PLAIN_VALUE', useValue: { join: () => 'a plain object' } },
        AlsoProvidedController,
      ],
    );
    expect(logger.warns.sort()).toEqual(
      [
        providerRouteWarning('ChatService'),
        providerRouteWarning('ExtendedChatService'),
        providerRouteWarning('MadeByFactory'),
        providerRouteWarning('ScopedService'),
      ].sort(),
    );
    // The symptom the warning explains: the client gets 404, while the controller's route works.
    await expect(WsClient.connect(t!.url('/on-provider'))).rejects.toThrow('Upgrade refused with 404');
    const client = clients.track(await WsClient.connect(t!.url('/working')));
    expect(await client.nextText()).toBe('mapped');
  });

  it('names each parameter a route method leaves undecorated next to decorated ones, and says @WsSession()', async () => {
    const logger = await start([RoomsController]);
    expect(logger.warns.sort()).toEqual([undecoratedWarning('after', 1), undecoratedWarning('room', 0)].sort());
    // The decorated and the plain forms, which the warning leaves alone, work.
    const decorated = clients.track(await WsClient.connect(t!.url('/decorated/lobby')));
    expect(await decorated.nextText()).toBe('lobby');
    const plain = clients.track(await WsClient.connect(t!.url('/plain')));
    expect(await plain.nextText()).toBe('plain');
    // The symptom the warning explains.
    const undecorated = clients.track(await WsClient.connect(t!.url('/rooms/lobby')));
    expect((await undecorated.closed).code).toBe(1011);
  });
});

@Injectable()
class SharedService {
  ping(): string {
    return 'pong';
  }
}

@Module({ providers: [SharedService, ChatService], exports: [SharedService, ChatService] })
class FirstFeature {}
@Module({ providers: [SharedService, ChatService] })
class SecondFeature {}
@Module({ providers: [SharedService, ChatService] })
class ThirdFeature {}

it('warns once of a provider class however many modules provide it, and reads nothing off classes without routes', async () => {
  const logger = new RecordingLogger();
  const lookup = jest.spyOn(WebSocketRoutesMetadataAccessor.prototype, 'getRoute');
  try {
    const imports = [WebSocketsModule.forRoot(), FirstFeature, SecondFeature, ThirdFeature];
    await startApp([WorkingController], {}, [], { imports, logger: true, configure: (app) => app.useLogger(logger) }).then((t) => t.close());
    expect(logger.warns).toEqual([providerRouteWarning('ChatService')]);
    // A large app has thousands of providers: the ones no @WebSocketRoute was put on cost no metadata reads.
    expect(lookup.mock.calls.filter(([method]) => method === SharedService.prototype.ping)).toEqual([]);
  } finally {
    lookup.mockRestore();
  }
});

// ---------------------------------------------------------------------------
// The module without forRoot, and options from the environment

describe('module options', () => {
  const FORGOT_FOR_ROOT =
    'WebSocketsModule was imported without options: import WebSocketsModule.forRoot() (or forRootAsync()) instead of ' +
    'WebSocketsModule, once, in the root module; it is global, so other modules need not import it';

  it('says to call forRoot() when the bare module is imported', async () => {
    await expect(initApp([WorkingController], [WebSocketsModule])).rejects.toThrow(FORGOT_FOR_ROOT);
  });

  it('says so too when a feature module imports the bare module beside the root forRoot()', async () => {
    @Module({ imports: [WebSocketsModule] })
    class FeatureModule {}
    await expect(initApp([WorkingController], [WebSocketsModule.forRoot(), FeatureModule])).rejects.toThrow(FORGOT_FOR_ROOT);
  });

  it.each([
    ['pingInterval=500', '"pingInterval=500" (a string)'],
    // A block-bodied factory that forgot its `return`: not the bare-import message, though the options are missing too.
    [undefined, 'undefined'],
  ])('says what a forRootAsync factory gave when it is not an options object (%j)', async (given, shown) => {
    const imports = [WebSocketsModule.forRootAsync({ useFactory: () => given as unknown as WebSocketsModuleOptions })];
    await expect(initApp([WorkingController], imports)).rejects.toThrow(
      `WebSocketsModule options must be an object, got ${shown}: a forRootAsync() factory must return them`,
    );
  });

  describe('from ConfigService', () => {
    const saved = process.env.WS_PING_MS;
    beforeEach(() => {
      process.env.WS_PING_MS = '500';
    });
    afterEach(() => {
      if (saved === undefined) delete process.env.WS_PING_MS;
      else process.env.WS_PING_MS = saved;
    });

    const fromConfig = async (useFactory: (config: ConfigService) => WebSocketsModuleOptions) => [
      await ConfigModule.forRoot({ ignoreEnvFile: true }),
      WebSocketsModule.forRootAsync({ imports: [ConfigModule], inject: [ConfigService], useFactory }),
    ];

    it('shows a string from the environment as a string', async () => {
      const imports = await fromConfig((config) => ({ pingInterval: config.get('WS_PING_MS') }));
      await expect(initApp([WorkingController], imports)).rejects.toThrow(
        'WebSockets option "pingInterval" must be an integer from 0 to 2147483647, got "500" (a string)',
      );
    });

    it('starts with the documented fix, Number(...) with a default', async () => {
      const imports = await fromConfig((config) => ({ pingInterval: Number(config.get('WS_PING_MS') ?? 25_000) }));
      const t = await startApp([EchoController], {}, [], { imports });
      try {
        const client = clients.track(await WsClient.connect(t.url('/echo')));
        // The value from the environment took effect: the server pings.
        await once(client.ws, 'ping');
      } finally {
        clients.dropAll();
        await t.close();
      }
    });
  });
});
