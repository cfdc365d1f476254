/**
 * Finds `@WebSocketRoute` methods on controllers at bootstrap, and composes
 * their full paths the way Nest composes an HTTP GET route's: global prefix
 * (and its `exclude`), RouterModule path, URI version, controller path,
 * method path. Warns of the routes that cannot work as written (on a
 * provider, or with a parameter no decorator fills).
 */
import { Injectable, Logger, RequestMethod } from '@nestjs/common';
import { MODULE_PATH, PATH_METADATA, VERSION_METADATA } from '@nestjs/common/constants.js';
import { ApplicationConfig, DiscoveryService, MetadataScanner, ModulesContainer } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { RoutePathMetadata } from '@nestjs/core/router/interfaces/route-path-metadata.interface.js';
import { RoutePathFactory } from '@nestjs/core/router/route-path-factory.js';
import { offeredExtensionFactories, type WebSocketExtensionOptions } from '../extensions/extension-options.js';
import { checkProtocolOption } from '../protocol/handshake.js';
import { originPolicy, type AllowedOrigin, type OriginPolicy } from '../protocol/origin-policy.js';
import type { WebSocketExtensionFactory } from '../protocol/websocket-extension.js';
import {
  checkIntegerOption,
  resolveSessionSettings,
  type SessionSettings,
  type WebSocketSessionOptions,
} from '../session/websocket-session-options.js';
import { declaresRoutes } from './route-hosts.js';
import type { WebSocketRouteMetadata } from './websocket-route.decorator.js';
import { WebSocketRoutesMetadataAccessor } from './websocket-routes-metadata.accessor.js';

/** A decorated controller method, with everything needed to map and run it. */
export interface DiscoveredWebSocketRoute {
  /** Full paths, as they are matched against request paths. */
  paths: string[];
  protocol: string | undefined;
  raw: boolean;
  settings: SessionSettings;
  extensions: readonly WebSocketExtensionFactory[];
  originAllowed: OriginPolicy;
  /** Sessions the route may hold at once, if it sets a limit of its own. */
  maxConnections: number | undefined;
  handshakeTimeout: number;
  controller: InstanceWrapper<object>;
  /** Key of the module that declares the controller, for its enhancers. */
  moduleKey: string;
  methodName: string;
  /** `ControllerName.method`, for logs and errors. */
  name: string;
}

/** Long enough for a guard that asks another service; short enough that a hung one does not pile up sockets. */
const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

@Injectable()
export class WebSocketRoutesExplorer {
  private readonly logger = new Logger('WebSocketRoutes');
  private readonly pathFactory: RoutePathFactory;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly metadata: WebSocketRoutesMetadataAccessor,
    private readonly config: ApplicationConfig,
    private readonly modules: ModulesContainer,
  ) {
    this.pathFactory = new RoutePathFactory(config);
  }

  /** Every route of every controller; `defaults` are the module-wide options. */
  explore(
    defaults: WebSocketSessionOptions & WebSocketExtensionOptions & { allowedOrigins?: AllowedOrigin[]; handshakeTimeout?: number },
  ): DiscoveredWebSocketRoute[] {
    const routes: DiscoveredWebSocketRoute[] = [];
    const controllerPrototypes = new Set<object>();
    for (const controller of this.discovery.getControllers()) {
      const { instance, metatype, host } = controller;
      if (!instance || !metatype || !host) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      controllerPrototypes.add(prototype);
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName] as Function;
        const route = this.metadata.getRoute(method);
        if (route === undefined) continue;
        const name = `${metatype.name}.${methodName}`;
        this.warnOfUndecoratedParameters(name, instance, methodName);
        routes.push({
          paths: this.fullPaths(metatype, host.metatype, method, route),
          protocol: named(name, () => checkProtocolOption(route.protocol)),
          raw: route.raw === true,
          settings: named(name, () => resolveSessionSettings(defaults, route)),
          extensions: named(name, () => offeredExtensionFactories({ raw: route.raw === true, negotiateExtensions: route.negotiateExtensions }, defaults, route)),
          originAllowed: named(name, () => originPolicy(route.allowedOrigins ?? defaults.allowedOrigins)),
          maxConnections: named(name, () =>
            route.maxConnections === undefined ? undefined : checkIntegerOption('maxConnections', route.maxConnections, 1),
          ),
          handshakeTimeout: named(name, () =>
            checkIntegerOption('handshakeTimeout', route.handshakeTimeout ?? defaults.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT, 1),
          ),
          controller: controller as InstanceWrapper<object>,
          moduleKey: host.token,
          methodName,
          name,
        });
      }
    }
    this.warnOfRoutesOnProviders(controllerPrototypes);
    return routes;
  }

  private warnOfUndecoratedParameters(name: string, instance: object, methodName: string): void {
    for (const index of this.metadata.getUndecoratedParameters(instance, methodName)) {
      this.logger.warn(
        `${name}: parameter ${index} has no decorator, so it gets undefined (once one parameter of a route method is decorated, ` +
          'each gets only what its decorator gives). Decorate it with @WsSession() to get the session',
      );
    }
  }

  /**
   * Nest maps only controllers' routes: a `@WebSocketRoute` on a provider would be a silent 404.
   * Only classes the decorator saw are scanned (a large app has thousands of providers), each
   * once however many modules provide it.
   */
  private warnOfRoutesOnProviders(controllerPrototypes: ReadonlySet<object>): void {
    const scanned = new Set<object>(controllerPrototypes);
    for (const provider of this.discovery.getProviders()) {
      const prototype = classPrototypeOf(provider);
      if (prototype === undefined || scanned.has(prototype) || !declaresRoutes(prototype)) continue;
      scanned.add(prototype);
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        if (this.metadata.getRoute((prototype as Record<string, Function>)[methodName]) === undefined) continue;
        const className = (prototype.constructor as Function).name;
        this.logger.warn(
          `${className}.${methodName} has @WebSocketRoute, but ${className} is a provider, not a controller: the route is not mapped. ` +
            `Routes belong on controllers: put ${className} in a module's \`controllers\` (with @Controller()), not its \`providers\``,
        );
      }
    }
  }

  private fullPaths(controller: Function, module: Function, method: Function, route: WebSocketRouteMetadata): string[] {
    const versioningOptions = this.config.getVersioning();
    const controllerVersion = versioningOptions
      ? ((Reflect.getMetadata(VERSION_METADATA, controller) ?? versioningOptions.defaultVersion) as RoutePathMetadata['controllerVersion'])
      : undefined;
    const base: Omit<RoutePathMetadata, 'ctrlPath' | 'methodPath'> = {
      globalPrefix: this.config.getGlobalPrefix(),
      modulePath: this.modulePath(module),
      versioningOptions,
      controllerVersion,
      methodVersion: Reflect.getMetadata(VERSION_METADATA, method) as RoutePathMetadata['methodVersion'],
    };
    const paths = new Set<string>();
    for (const ctrlPath of controllerPaths(controller)) {
      for (const methodPath of route.paths) {
        for (const path of this.pathFactory.create({ ...base, ctrlPath, methodPath }, RequestMethod.GET)) paths.add(path);
      }
    }
    return [...paths];
  }

  /** A RouterModule path, as Nest's RoutesResolver reads it. */
  private modulePath(module: Function): string | undefined {
    return (
      (Reflect.getMetadata(MODULE_PATH + this.modules.applicationId, module) as string | undefined) ??
      (Reflect.getMetadata(MODULE_PATH, module) as string | undefined)
    );
  }
}

/**
 * The class behind a provider, or undefined for a value or factory result that is not a class
 * instance. Scoped providers have one too: Nest makes a prototype-only instance for them at startup.
 */
function classPrototypeOf(provider: InstanceWrapper): object | undefined {
  const { instance } = provider;
  if (typeof instance !== 'object' || instance === null) return undefined;
  const prototype = Object.getPrototypeOf(instance) as object | null;
  return prototype === null || prototype === Object.prototype ? undefined : prototype;
}

function controllerPaths(controller: Function): string[] {
  const prefix = Reflect.getMetadata(PATH_METADATA, controller) as string | string[] | undefined;
  if (prefix === undefined) return ['/'];
  return Array.isArray(prefix) ? prefix : [prefix];
}

/** A route's option, checked: an invalid one fails startup naming the route. */
function named<T>(name: string, resolve: () => T): T {
  try {
    return resolve();
  } catch (error) {
    throw new TypeError(`${name}: ${(error as Error).message}`);
  }
}
