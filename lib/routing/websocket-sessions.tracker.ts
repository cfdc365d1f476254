/**
 * Keeps the open sessions of the module, so application shutdown can say
 * goodbye to each (1001), give handlers a bounded time, and terminate the rest.
 */
import { Injectable } from '@nestjs/common';
import { CloseCode, CloseReason } from '../protocol/close-reason.js';
import type { BaseWebSocketSession } from '../session/base-websocket-session.js';

@Injectable()
export class WebSocketSessionsTracker {
  private readonly running = new Map<BaseWebSocketSession, Promise<void>>();

  /** Tracks a session until its run (handler and connection) is over. */
  track(session: BaseWebSocketSession, run: Promise<void>): void {
    const done = run.finally(() => this.running.delete(session));
    this.running.set(session, done);
  }

  /** Closes every session with 1001, waits up to `timeoutMs` for them to end, then terminates the rest's connections. */
  async closeAll(timeoutMs: number): Promise<void> {
    if (this.running.size === 0) return;
    const goingAway = new CloseReason(CloseCode.GOING_AWAY, 'Server is shutting down');
    for (const session of this.running.keys()) session.close(goingAway).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([Promise.allSettled(this.running.values()), timeout]);
    clearTimeout(timer);
    // Not awaited after this: a handler that never returns would hold the shutdown forever.
    for (const session of this.running.keys()) session.terminate();
  }
}
