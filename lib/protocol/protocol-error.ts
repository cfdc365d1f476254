/**
 * An RFC 6455 violation by the peer, carrying the close code the connection
 * must be failed with (1002, 1007, 1009, ...).
 */
export class WebSocketProtocolError extends Error {
  constructor(
    readonly closeCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'WebSocketProtocolError';
  }
}
