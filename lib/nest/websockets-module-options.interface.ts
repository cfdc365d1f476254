/** Options of `WebSocketsModule.forRoot` / `forRootAsync`, as Ktor's `install(WebSockets) { }`. */
import type { WebSocketSessionOptions } from '../session/websocket-session-options.js';

export interface WebSocketsModuleOptions extends WebSocketSessionOptions {
  /**
   * Milliseconds that handlers get to finish after application shutdown sent
   * every session close 1001; the rest are then terminated. Default 5 000.
   */
  shutdownTimeout?: number;
}
