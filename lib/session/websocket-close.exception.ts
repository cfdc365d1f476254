/**
 * `WebSocketCloseException`: thrown by a session handler (or an exception
 * filter) to end the session with a chosen close code and reason instead of
 * 1011. A deliberate close, so Nest's exception logging leaves it out.
 */
import { IntrinsicException } from '@nestjs/common';
import { CloseReason, fitCloseMessage, isValidWireCloseCode } from '../protocol/close-reason.js';

export class WebSocketCloseException extends IntrinsicException {
  /** What the session closes with; the reason is cut to the 123 bytes a Close frame carries. */
  readonly closeReason: CloseReason;

  /** Throws RangeError for a code that may not be sent (1004-1006, 1015, 1016-2999, outside 1000-4999). */
  constructor(code: number, reason = '') {
    super(reason === '' ? `WebSocket closed with ${code}` : `WebSocket closed with ${code}: ${reason}`);
    if (!isValidWireCloseCode(code)) throw new RangeError(`Close code ${code} may not be sent`);
    this.closeReason = new CloseReason(code, fitCloseMessage(reason));
  }
}
