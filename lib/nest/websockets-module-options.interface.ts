/** Options of `WebSocketsModule.forRoot` / `forRootAsync`, as Ktor's `install(WebSockets) { }`. */
import type { WebSocketBroker } from '../broker/websocket-broker.js';
import type { WebSocketExtensionOptions } from '../extensions/extension-options.js';
import type { TopicOptions } from '../routing/topic-options.js';
import type { AllowedOrigin } from '../protocol/origin-policy.js';
import type { WebSocketSessionOptions } from '../session/websocket-session-options.js';

export interface WebSocketsModuleOptions extends WebSocketSessionOptions, WebSocketExtensionOptions {
  /**
   * Milliseconds that handlers get to finish after application shutdown sent
   * every session close 1001; the rest are then terminated. Default 5 000.
   */
  shutdownTimeout?: number;
  /**
   * Browser origins that may connect (a route may set its own). Default:
   * the server's own origin only; requests without `Origin` (not from a
   * browser page) always pass.
   */
  allowedOrigins?: AllowedOrigin[];
  /** Sessions all routes hold at once (open, or still deciding before the 101); more get 503. Default 10 000. */
  maxConnections?: number;
  /**
   * Milliseconds guards, interceptors and pipes get to decide an upgrade
   * (a route may set its own); past it the client gets 503. Default 10 000.
   */
  handshakeTimeout?: number;
  /**
   * Topics one session may subscribe to at once (`session.subscribe`); one more rejects with a
   * RangeError. Bounds what a peer choosing its rooms can make the server hold. Default 1 000.
   */
  maxSubscriptionsPerSession?: number;
  /**
   * What carries published messages, history and presence between the processes of the application.
   * Default: the in-process broker (one process, nothing to install); `new RedisBroker({ url })` from
   * `nest-websocket-routes/redis` for many.
   */
  broker?: WebSocketBroker;
  /** Rules for topics (history, presence, envelope); the first whose `match` fits a topic applies. Default: none. */
  topics?: TopicOptions[];
}
