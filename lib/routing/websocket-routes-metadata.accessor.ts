/** Reads `@WebSocketRoute` metadata, and the parameter decorators beside it, off controller methods. */
import { Injectable } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { Reflector } from '@nestjs/core';
import { ContextUtils } from '@nestjs/core/internal';
import type { WebSocketRouteMetadata } from './websocket-route.decorator.js';
import { WEBSOCKET_ROUTE_METADATA } from './websocket-routes.constants.js';

@Injectable()
export class WebSocketRoutesMetadataAccessor {
  private readonly contextUtils = new ContextUtils();

  constructor(private readonly reflector: Reflector) {}

  getRoute(method: Function): WebSocketRouteMetadata | undefined {
    return this.reflector.get<WebSocketRouteMetadata | undefined>(WEBSOCKET_ROUTE_METADATA, method);
  }

  /**
   * Indexes of the method's parameters without a parameter decorator when others have one: Nest
   * gives those undefined (only a method with no decorated parameter is handed the session).
   */
  getUndecoratedParameters(instance: object, methodName: string): number[] {
    // Read where Nest's RouterExecutionContext reads them, whichever class declared the method.
    const decorated = this.contextUtils.reflectCallbackMetadata(instance, methodName, ROUTE_ARGS_METADATA) as
      | Record<string, { index: number }>
      | undefined;
    if (decorated === undefined) return [];
    const indexes = new Set(Object.values(decorated).map((argument) => argument.index));
    if (indexes.size === 0) return [];
    const method = (instance as Record<string, Function>)[methodName];
    // The compiler's list counts parameters with defaults too; `length` covers code built without decorator metadata.
    const paramtypes = this.contextUtils.reflectCallbackParamtypes(instance, methodName) as unknown[] | undefined;
    const count = Math.max(paramtypes?.length ?? 0, method.length);
    const undecorated: number[] = [];
    for (let index = 0; index < count; index++) if (!indexes.has(index)) undecorated.push(index);
    return undecorated;
  }
}
