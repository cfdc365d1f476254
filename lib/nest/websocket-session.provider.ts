/**
 * `WEBSOCKET_SESSION`: the token that injects the current session into
 * REQUEST-scoped providers, as `REQUEST` injects the upgrade request. A
 * provider injecting it gets one instance per session; outside a WebSocket
 * session (an HTTP request) it is undefined.
 */
import { Scope, type FactoryProvider } from '@nestjs/common';
import { REQUEST } from '@nestjs/core';
import { sessionOfRequest } from './upgrade-exchange.js';

export const WEBSOCKET_SESSION = Symbol('WEBSOCKET_SESSION');

export const webSocketSessionProvider: FactoryProvider = {
  provide: WEBSOCKET_SESSION,
  scope: Scope.REQUEST,
  inject: [REQUEST],
  useFactory: (request: unknown) => sessionOfRequest(request),
};
