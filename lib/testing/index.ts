/**
 * `nest-websocket-routes/testing`: helpers for testing WebSocket routes in
 * your own tests, with Nest's TestingModule. A second entry point, so the
 * main package carries none of it; it needs no WebSocket client library.
 */
export { connectWebSocket, type ConnectWebSocketOptions } from './connect-websocket.js';
export type { WebSocketTestClient, ReceivedClose } from './websocket-test-client.js';
export { WebSocketHandshakeError, WebSocketReceiveError } from './testing-errors.js';
