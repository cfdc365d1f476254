/**
 * `isWebSocketRoute(context)`: tells a guard, interceptor or filter shared
 * with HTTP routes that it runs for a WebSocket route, whose context says
 * `'http'` before the 101 (so HTTP guards work unchanged) and `'ws'` after.
 * An interceptor that should not wrap sessions (a request timeout) checks it.
 */
import type { ArgumentsHost } from '@nestjs/common';
import { BaseWebSocketSession } from '../session/base-websocket-session.js';
import { sessionOfRequest } from './upgrade-exchange.js';

export function isWebSocketRoute(context: ArgumentsHost): boolean {
  switch (context.getType<string>()) {
    case 'http':
      return sessionOfRequest(context.switchToHttp().getRequest()) !== undefined;
    case 'ws':
      return context.switchToWs().getClient() instanceof BaseWebSocketSession;
    default:
      return false;
  }
}
