/** Reads `@WebSocketRoute` metadata off controller methods. */
import { Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { WebSocketRouteMetadata } from './websocket-route.decorator.js';
import { WEBSOCKET_ROUTE_METADATA } from './websocket-routes.constants.js';

@Injectable()
export class WebSocketRoutesMetadataAccessor {
  constructor(private readonly reflector: Reflector) {}

  getRoute(method: Function): WebSocketRouteMetadata | undefined {
    return this.reflector.get<WebSocketRouteMetadata | undefined>(WEBSOCKET_ROUTE_METADATA, method);
  }
}
