/**
 * The errors the testing helpers reject with. They are classes, not bare
 * `Error`s, so a test can tell "the server refused the upgrade" or "the
 * expected message never came" apart from its own assertion failures.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * The server did not accept the opening handshake: it answered with another
 * status than 101 (a guard's 401, an unknown path's 404, a subprotocol
 * mismatch's 400), or with a 101 that is not a valid WebSocket accept.
 */
export class WebSocketHandshakeError extends Error {
  constructor(
    /** The HTTP status the server answered with (101 when its 101 response was invalid). */
    readonly status: number,
    /** The response headers, as Node's `http` module parsed them (lower-case names). */
    readonly headers: IncomingHttpHeaders,
    /** The response body as UTF-8 text (at most the first 64 KiB). */
    readonly body: string,
    message = `WebSocket handshake refused with HTTP ${status}${body.trim() ? `: ${body.trim()}` : ''}`,
  ) {
    super(message);
    this.name = 'WebSocketHandshakeError';
  }
}

/**
 * A `receive*()` call of `WebSocketTestClient` failed: nothing arrived in
 * time, something else arrived (the message says what), or the connection
 * ended first.
 */
export class WebSocketReceiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebSocketReceiveError';
  }
}
