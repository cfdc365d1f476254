/**
 * Finds `@WebSocketRoute` methods on controllers at bootstrap and turns them
 * into route definitions: full path, settings, and a handler bound to the
 * controller instance.
 */
import { Injectable } from '@nestjs/common';
import { GUARDS_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { resolveSessionSettings, type WebSocketSessionOptions } from '../session/websocket-session-options.js';
import { joinPaths, type WebSocketRouteDefinition } from './mapped-websocket-route.js';
import { WebSocketRoutesMetadataAccessor } from './websocket-routes-metadata.accessor.js';

@Injectable()
export class WebSocketRoutesExplorer {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly metadata: WebSocketRoutesMetadataAccessor,
  ) {}

  /** Every route of every controller; `defaults` are the module-wide session options. */
  explore(defaults: WebSocketSessionOptions): WebSocketRouteDefinition[] {
    const routes: WebSocketRouteDefinition[] = [];
    for (const wrapper of this.discovery.getControllers()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
      for (const methodName of this.scanner.getAllMethodNames(prototype)) {
        const method = prototype[methodName] as Function;
        const route = this.metadata.getRoute(method);
        if (route === undefined) continue;
        const name = `${metatype.name}.${methodName}`;
        if (hasGuards(metatype, method)) {
          throw new Error(`${name}: @UseGuards() does not protect WebSocket routes yet; refusing to map it unprotected`);
        }
        if (!wrapper.isDependencyTreeStatic()) {
          throw new Error(`${name}: WebSocket routes on request-scoped controllers are not supported yet`);
        }
        let settings;
        try {
          settings = resolveSessionSettings(defaults, route);
        } catch (error) {
          throw new Error(`${name}: ${(error as Error).message}`);
        }
        const handler = (session: unknown) => method.call(instance, session);
        for (const prefix of controllerPrefixes(metatype)) {
          for (const path of route.paths) {
            routes.push({ path: joinPaths(prefix, path), protocol: route.protocol, raw: route.raw === true, settings, handler, name });
          }
        }
      }
    }
    return routes;
  }
}

function controllerPrefixes(controller: Function): string[] {
  const prefix = Reflect.getMetadata(PATH_METADATA, controller) as string | string[] | undefined;
  if (prefix === undefined) return ['/'];
  return Array.isArray(prefix) ? prefix : [prefix];
}

function hasGuards(controller: Function, method: Function): boolean {
  return [controller, method].some((target) => (Reflect.getMetadata(GUARDS_METADATA, target) as unknown[] | undefined)?.length);
}
