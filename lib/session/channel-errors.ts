/**
 * Errors of a session's channels, named after Ktor's: receiving from
 * `incoming` after it ended, or sending after the connection is gone; and
 * the rejection sends hand out once the connection is gone.
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

const ignore = () => undefined;

/**
 * `promise`, marked as handled: when nobody awaits it, its rejection is not an unhandled rejection (which
 * would end the process); whoever awaits it still sees it reject. For sends to a peer that has gone: a
 * handler that sends without awaiting (a timer, an event, a broadcast loop) must not crash the server
 * because one client left, as `ws` ignores such a send unless a callback asks.
 */
export function quietly<T>(promise: Promise<T>): Promise<T> {
  promise.catch(ignore);
  return promise;
}

/** A send (or subscribe) refused because the connection is gone or closing: rejects with ClosedSendChannelError, quietly. */
export function closedSend(message?: string): Promise<never> {
  return quietly(Promise.reject(new ClosedSendChannelError(message)));
}
