/**
 * `@WebSocketRoute(path, options)`: marks a controller method as the handler
 * of every WebSocket accepted on that path (composed with the controller's
 * prefix), as Ktor's `webSocket` / `webSocketRaw`.
 */
import { SetMetadata } from '@nestjs/common';
import type { WebSocketExtensionOptions } from '../extensions/extension-options.js';
import type { AllowedOrigin } from '../protocol/origin-policy.js';
import type { WebSocketSessionOptions } from '../session/websocket-session-options.js';
import { markRouteHost } from './route-hosts.js';
import { WEBSOCKET_ROUTE_METADATA } from './websocket-routes.constants.js';

export interface WebSocketRouteOptions extends WebSocketSessionOptions, WebSocketExtensionOptions {
  /** Subprotocol the client must offer (exact match); echoed in the 101 response. */
  protocol?: string;
  /** A raw session (`webSocketRaw`): every frame as it came, nothing automatic. Default false. */
  raw?: boolean;
  /** A raw session negotiates extensions (`deflate`, `extensions`) only with this, as Ktor's `webSocketRaw(negotiateExtensions)`. Default false. */
  negotiateExtensions?: boolean;
  /** Browser origins that may connect to this route, instead of the module's `allowedOrigins`. */
  allowedOrigins?: AllowedOrigin[];
  /** Sessions this route holds at once (open, or still deciding before the 101); more get 503. Default: no limit but the module's. */
  maxConnections?: number;
  /** Milliseconds this route's guards, interceptors and pipes get to decide an upgrade, instead of the module's. */
  handshakeTimeout?: number;
}

export interface WebSocketRouteMetadata extends WebSocketRouteOptions {
  paths: string[];
}

export function WebSocketRoute(path: string | string[] = '/', options: WebSocketRouteOptions = {}): MethodDecorator {
  const paths = Array.isArray(path) ? path : [path];
  const setMetadata = SetMetadata<string, WebSocketRouteMetadata>(WEBSOCKET_ROUTE_METADATA, { ...options, paths });
  return (target, key, descriptor) => {
    markRouteHost(target);
    return setMetadata(target, key, descriptor);
  };
}
