/**
 * The raw server session, as Ktor's `webSocketRaw`: every frame reaches
 * `incoming` as it came off the wire (control frames, each fragment), and
 * nothing is automatic. When the handler returns, what was queued is flushed
 * and the TCP connection ends at once. Engine limits still hold (maxFrameSize,
 * maxBufferedBytes, idleTimeout); maxMessageSize and maxFragments do not, since
 * nothing is reassembled here.
 */
import { CloseCode, CloseReason, fitCloseReason } from '../protocol/close-reason.js';
import { Frame } from '../protocol/frame.js';
import { BaseWebSocketSession } from './base-websocket-session.js';

export class RawWebSocketServerSession extends BaseWebSocketSession {
  protected handleFrame(frame: Frame): void {
    this.incoming.offer(frame);
  }

  protected onConnectionClosed(): void {
    this.incoming.close();
  }

  /**
   * Sends a Close frame and nothing else: the handler runs the rest of the close sequence. Not `async`:
   * the write's own promise is returned, so a refused Close rejects quietly as refused sends do.
   */
  close(reason: CloseReason = new CloseReason(CloseCode.NORMAL)): Promise<void> {
    let frame: Frame;
    try {
      frame = new Frame.Close(fitCloseReason(reason));
    } catch (error) {
      // A code that may not go on the wire is the caller's mistake: a visible rejection.
      return Promise.reject(error);
    }
    return this.write(frame);
  }

  sendFrame(frame: Frame): Promise<void> {
    return this.write(frame);
  }

  protected async afterHandler(failure: CloseReason | undefined): Promise<void> {
    if (failure !== undefined) {
      this.closeConnection(failure);
    } else {
      this.stopReceiving();
      this.endAfterQueued();
    }
  }
}
