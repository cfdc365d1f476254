/**
 * What every module of the application may inject without importing
 * `WebSocketsModule` (as Nest's `REQUEST`): the sessions registry and the
 * current session. Global, and imported by `WebSocketsModule`.
 */
import { Global, Module } from '@nestjs/common';
import { WebSocketSessions } from '../routing/websocket-sessions.registry.js';
import { WEBSOCKET_SESSION, webSocketSessionProvider } from './websocket-session.provider.js';

@Global()
@Module({
  providers: [WebSocketSessions, webSocketSessionProvider],
  exports: [WebSocketSessions, WEBSOCKET_SESSION],
})
export class WebSocketsCoreModule {}
