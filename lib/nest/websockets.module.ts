/**
 * `WebSocketsModule`: import it once (`forRoot` / `forRootAsync`). At
 * bootstrap it maps every `@WebSocketRoute` onto Nest's HTTP server; at
 * shutdown it closes the sessions it accepted.
 */
import {
  type BeforeApplicationShutdown,
  Inject,
  Logger,
  Module,
  type OnApplicationShutdown,
  type OnModuleInit,
  Optional,
} from '@nestjs/common';
import { DiscoveryModule, HttpAdapterHost, ModuleRef } from '@nestjs/core';
import type { WebSocketRouteDefinition } from '../routing/mapped-websocket-route.js';
import { WebSocketRoutesMetadataAccessor } from '../routing/websocket-routes-metadata.accessor.js';
import { WebSocketRoutesExplorer } from '../routing/websocket-routes.explorer.js';
import { WebSocketUpgradeRouter } from '../routing/websocket-upgrade.router.js';
import { WebSocketSessions } from '../routing/websocket-sessions.registry.js';
import { DEFAULT_MAX_SUBSCRIPTIONS_PER_SESSION } from '../routing/topic-hub.js';
import { TopicRules } from '../routing/topic-options.js';
import { InProcessBroker } from '../broker/in-process.broker.js';
import type { WebSocketBroker } from '../broker/websocket-broker.js';
import {
  ConfigurableWebSocketsModule,
  WEBSOCKETS_MODULE_OPTIONS,
  WEBSOCKETS_OPTIONS_TYPE,
} from './websockets-module.definition.js';
import type { WebSocketsModuleOptions } from './websockets-module-options.interface.js';
import { WebSocketRouteHandlerFactory } from './websocket-route-handler.factory.js';
import { WebSocketsCoreModule } from './websockets-core.module.js';
import { originPolicy } from '../protocol/origin-policy.js';
import type { WebSocketApplicationContext } from '../session/websocket-session.js';
import { resolveExtensionFactories } from '../extensions/extension-options.js';
import { checkIntegerOption, resolveSessionSettings } from '../session/websocket-session-options.js';
import { describeValue } from '../protocol/describe-value.js';

const DEFAULT_SHUTDOWN_TIMEOUT = 5_000;
/** A bound on the sockets and memory one flood can take; raise it for more. */
const DEFAULT_MAX_CONNECTIONS = 10_000;

@Module({
  imports: [DiscoveryModule, WebSocketsCoreModule],
  providers: [WebSocketRoutesMetadataAccessor, WebSocketRoutesExplorer, WebSocketRouteHandlerFactory, WebSocketUpgradeRouter],
  exports: [WebSocketsCoreModule],
})
export class WebSocketsModule
  extends ConfigurableWebSocketsModule
  implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger('WebSocketsModule');
  private readonly shutdownTimeout: number;
  private readonly maxConnections: number;

  constructor(
    // Optional so that importing the bare class fails with what to do instead of Nest's unresolved-token error.
    @Optional() @Inject(WEBSOCKETS_MODULE_OPTIONS) private readonly options: WebSocketsModuleOptions,
    private readonly explorer: WebSocketRoutesExplorer,
    private readonly handlers: WebSocketRouteHandlerFactory,
    private readonly router: WebSocketUpgradeRouter,
    private readonly adapterHost: HttpAdapterHost,
    private readonly moduleRef: ModuleRef,
    private readonly sessions: WebSocketSessions,
  ) {
    super();
    checkModuleOptions(options, moduleRef);
    // Checked here too, so a bad option fails startup even in an app without routes.
    resolveSessionSettings(options);
    originPolicy(options.allowedOrigins);
    resolveExtensionFactories(options);
    this.shutdownTimeout = checkIntegerOption('shutdownTimeout', options.shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT, 0);
    this.maxConnections = checkIntegerOption('maxConnections', options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, 1);
    if (options.handshakeTimeout !== undefined) checkIntegerOption('handshakeTimeout', options.handshakeTimeout, 1);
    sessions.configureTopics(
      checkBroker(options.broker) ?? new InProcessBroker(),
      TopicRules.of(options.topics),
      checkIntegerOption('maxSubscriptionsPerSession', options.maxSubscriptionsPerSession ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_SESSION, 1),
    );
  }

  static forRoot(options: typeof WEBSOCKETS_OPTIONS_TYPE = {}) {
    return super.forRoot(options);
  }

  /**
   * After Nest registered its HTTP routes (so they win on shared paths) and
   * before its 404 handler, which `onApplicationBootstrap` would come after.
   */
  async onModuleInit(): Promise<void> {
    this.mountRoutes();
    await this.sessions.startBroker();
  }

  private mountRoutes(): void {
    const discovered = this.explorer.explore(this.options);
    const httpAdapter = this.adapterHost.httpAdapter;
    if (httpAdapter === undefined) {
      if (discovered.length > 0) this.logger.warn('No HTTP server in this application context: WebSocket routes are not mapped');
      return;
    }
    const routes = discovered.flatMap((route): WebSocketRouteDefinition[] => {
      const handle = this.handlers.create(route, httpAdapter);
      const { protocol, raw, settings, extensions, originAllowed, maxConnections, handshakeTimeout, name } = route;
      return route.paths.map((path) => ({ path, protocol, raw, settings, extensions, originAllowed, maxConnections, handshakeTimeout, name, handle }));
    });
    // ModuleRef looks only inside this module unless told otherwise; the session's application sees them all.
    const moduleRef = this.moduleRef;
    const application = {
      get: (token, options) => moduleRef.get(token, { strict: false, ...options }),
      resolve: (token, contextId, options) => moduleRef.resolve(token, contextId, { strict: false, ...options }),
    } satisfies WebSocketApplicationContext;
    this.router.mount(routes, httpAdapter, application, this.maxConnections);
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.router.shutdown(this.shutdownTimeout);
  }

  async onApplicationShutdown(): Promise<void> {
    this.router.unmount();
    await this.sessions.stopBroker();
  }
}

/** Only forRoot / forRootAsync provide the options: a bare `imports: [WebSocketsModule]` has none. */
function checkModuleOptions(options: WebSocketsModuleOptions | undefined, moduleRef: ModuleRef): void {
  if (options === undefined && !hasOptionsProvider(moduleRef)) {
    throw new Error(
      'WebSocketsModule was imported without options: import WebSocketsModule.forRoot() (or forRootAsync()) instead of ' +
        'WebSocketsModule, once, in the root module; it is global, so other modules need not import it',
    );
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`WebSocketsModule options must be an object, got ${describeValue(options)}: a forRootAsync() factory must return them`);
  }
}

const BROKER_METHODS = ['start', 'stop', 'subscribe', 'unsubscribe', 'publish', 'readHistory', 'join', 'leave', 'presence'] as const;

/** The `broker` option, if given: something with a WebSocketBroker's methods (RedisBroker, InProcessBroker, your own). */
function checkBroker(broker: WebSocketBroker | undefined): WebSocketBroker | undefined {
  if (broker === undefined) return undefined;
  const missing = typeof broker === 'object' && broker !== null ? BROKER_METHODS.filter((name) => typeof broker[name] !== 'function') : BROKER_METHODS;
  if (missing.length > 0 || typeof broker.processId !== 'string') {
    throw new TypeError(
      `WebSocketsModule option broker must be a WebSocketBroker (new RedisBroker({ url }) from nest-websocket-routes/redis, say), got ${describeValue(broker)}` +
        (missing.length > 0 && missing.length < BROKER_METHODS.length ? `, which has no ${missing.join(', ')}` : ''),
    );
  }
  return broker;
}

/** Whether this module instance came from forRoot / forRootAsync, whatever its factory returned. */
function hasOptionsProvider(moduleRef: ModuleRef): boolean {
  try {
    moduleRef.get(WEBSOCKETS_MODULE_OPTIONS, { strict: true });
    return true;
  } catch {
    return false;
  }
}
