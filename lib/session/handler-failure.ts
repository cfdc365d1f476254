/**
 * How an error thrown by a session's handler ends the session: the close
 * reason, and how loudly it deserves to be logged. One mapping for routes
 * (after their exception filters) and WebSocketUpgrade sessions alike.
 */
import { HttpException, IntrinsicException } from '@nestjs/common';
import { CloseCode, CloseReason, fitCloseMessage } from '../protocol/close-reason.js';
import { ClosedReceiveChannelError, ClosedSendChannelError } from './channel-errors.js';
import { WebSocketCloseException } from './websocket-close.exception.js';

export interface HandlerFailure {
  /** What to close with; undefined when the connection is gone already (a normal end). */
  reason: CloseReason | undefined;
  /** `error` for bugs, `warn` for refusals the code chose (an HttpException), `debug` for deliberate or normal ends. */
  level: 'debug' | 'warn' | 'error';
}

export const INTERNAL_ERROR = new CloseReason(CloseCode.INTERNAL_ERROR, 'Internal server error');

/** Receiving or sending past the end of the connection is how a handler learns it ended: not a failure. */
export function isConnectionGoneError(error: unknown): boolean {
  return error instanceof ClosedSendChannelError || error instanceof ClosedReceiveChannelError;
}

export function handlerFailure(error: unknown): HandlerFailure {
  if (isConnectionGoneError(error)) return { reason: undefined, level: 'debug' };
  if (error instanceof WebSocketCloseException) return { reason: error.closeReason, level: 'debug' };
  if (error instanceof HttpException && error.getStatus() >= 400 && error.getStatus() < 500) {
    return { reason: new CloseReason(CloseCode.VIOLATED_POLICY, fitCloseMessage(error.message)), level: 'warn' };
  }
  return { reason: INTERNAL_ERROR, level: error instanceof IntrinsicException ? 'warn' : 'error' };
}
