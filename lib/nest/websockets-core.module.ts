/**
 * What `WebSocketsModule` gives the application to inject: the sessions
 * registry and the current session. A module of its own so that the same
 * registry serves the router and every importer, global or not.
 */
import { Module } from '@nestjs/common';
import { WebSocketSessions } from '../routing/websocket-sessions.registry.js';
import { WEBSOCKET_SESSION, webSocketSessionProvider } from './websocket-session.provider.js';

@Module({
  providers: [WebSocketSessions, webSocketSessionProvider],
  exports: [WebSocketSessions, WEBSOCKET_SESSION],
})
export class WebSocketsCoreModule {}
