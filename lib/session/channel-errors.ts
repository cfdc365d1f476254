/**
 * Errors of a session's channels, named after Ktor's: receiving from
 * `incoming` after it ended, or sending after the connection is gone.
 */
export class ClosedReceiveChannelError extends Error {
  constructor(message = 'The incoming channel is closed: the connection has ended') {
    super(message);
    this.name = 'ClosedReceiveChannelError';
  }
}

export class ClosedSendChannelError extends Error {
  constructor(message = 'The outgoing channel is closed: the connection has ended') {
    super(message);
    this.name = 'ClosedSendChannelError';
  }
}
