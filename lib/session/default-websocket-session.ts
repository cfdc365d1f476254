/**
 * The default server session, as Ktor's `webSocket`, layered on the engine
 * the raw session uses: answers pings, pings the peer and times it out,
 * joins fragments into whole messages, checks that inflated text is UTF-8
 * (the frame parser checks uncompressed text as its bytes arrive), runs
 * the close handshake, and enforces `maxMessageSize` (1009) and
 * `maxFragments` (1008) on whole messages.
 * `incoming` only ever carries complete Text and Binary messages.
 */
import { randomBytes } from 'node:crypto';
import { CloseCode, CloseReason, fitCloseReason, isValidWireCloseCode } from '../protocol/close-reason.js';
import { Frame } from '../protocol/frame.js';
import { FrameType } from '../protocol/frame-type.js';
import { WebSocketProtocolError } from '../protocol/protocol-error.js';
import { isValidUtf8, Utf8Validator } from '../protocol/utf8-validator.js';
import { BaseWebSocketSession, FIRST_SUBCLASS_FLAG } from './base-websocket-session.js';
import { notOpenError } from './websocket-connection.js';
import type { DefaultWebSocketServerSession } from './websocket-session.js';

const ignore = () => undefined;
/** The ping timer's callback: one function for all sessions, the session its argument (no closure per session). */
const pingNow = (session: DefaultWebSocketServerSessionImpl) => session.ping();
/** A Close frame went out (ours or our echo): only the peer's Close matters from now on. */
const CLOSING = FIRST_SUBCLASS_FLAG;
/**
 * The message being received came compressed (RSV1 on its first frame): its text is checked here
 * once inflated. Text that came uncompressed was checked by the frame parser as it arrived.
 */
const INFLATED_MESSAGE = FIRST_SUBCLASS_FLAG << 1;

export class DefaultWebSocketServerSessionImpl extends BaseWebSocketSession implements DefaultWebSocketServerSession {
  /** The first close reason; `closeReason` is made from it when first asked for (most sessions never ask). */
  private firstCloseReason: CloseReason | undefined;
  private closeReasonPromise: Promise<CloseReason | null> | undefined;
  private resolveCloseReasonPromise: ((reason: CloseReason) => void) | undefined;
  private closeTimer: NodeJS.Timeout | undefined;

  /** The fragmented message being joined, if any. */
  private reassembly: Reassembly | undefined;

  private pingInterval = this.settings.pingInterval;
  private pongTimeout = this.settings.timeout;
  /** The pinger's one timer: until the next ping or, while a ping is out (`pingPayload` set), until its pong is late. */
  private pingerTimer: NodeJS.Timeout | undefined;
  private pingPayload: Buffer | undefined;

  get closeReason(): Promise<CloseReason | null> {
    if (this.closeReasonPromise === undefined) {
      const known = this.firstCloseReason;
      this.closeReasonPromise =
        known !== undefined ? Promise.resolve(known) : new Promise((resolve) => (this.resolveCloseReasonPromise = resolve));
    }
    return this.closeReasonPromise;
  }

  /** The first reason wins. */
  private resolveCloseReason(reason: CloseReason): void {
    if (this.firstCloseReason !== undefined) return;
    this.firstCloseReason = reason;
    this.resolveCloseReasonPromise?.(reason);
    this.resolveCloseReasonPromise = undefined;
  }

  /** False from the moment the session begins closing, before its Close frame goes out. */
  get isActive(): boolean {
    return !this.hasFlag(CLOSING) && super.isActive;
  }

  /** The pinger starts with the session, not before: no Ping may precede the 101. */
  open(): void {
    super.open();
    this.schedulePing();
  }

  /** While closing, frames are read (and data discarded) whatever `incoming` holds, so the peer's Close gets through. */
  protected hasRoom(): boolean {
    return this.hasFlag(CLOSING) || !this.incoming.full;
  }

  get pingIntervalMillis(): number {
    return this.pingInterval;
  }

  set pingIntervalMillis(value: number) {
    this.pingInterval = value;
    if (this.pingPayload === undefined) this.schedulePing();
  }

  get timeoutMillis(): number {
    return this.pongTimeout;
  }

  set timeoutMillis(value: number) {
    this.pongTimeout = value;
  }

  onFrame(frame: Frame): void {
    // Frames reach `handleFrame` in order and one at a time: no fragments pending means a message starts.
    if (this.reassembly === undefined && !frame.frameType.controlFrame) this.setFlag(INFLATED_MESSAGE, frame.rsv1);
    super.onFrame(frame);
  }

  protected handleFrame(frame: Frame): void {
    switch (frame.frameType) {
      case FrameType.PING:
        if (!this.hasFlag(CLOSING)) this.write(new Frame.Pong(frame.data)).catch(ignore);
        return;
      case FrameType.PONG:
        this.onPong(frame.data);
        return;
      case FrameType.CLOSE:
        this.onPeerClose(frame.data);
        return;
    }
    // After our Close only the peer's Close is awaited; data would only fill `incoming`.
    if (this.hasFlag(CLOSING)) return;
    if (frame.fin && this.reassembly === undefined) {
      if (frame.data.length > this.settings.maxMessageSize) {
        this.fail(CloseCode.TOO_BIG, `Message exceeds maxMessageSize ${this.settings.maxMessageSize}`);
        return;
      }
      if (this.hasFlag(INFLATED_MESSAGE) && frame.frameType === FrameType.TEXT && !isValidUtf8(frame.data)) {
        this.fail(CloseCode.NOT_CONSISTENT, 'Text message is not valid UTF-8');
        return;
      }
      this.incoming.offer(frame);
      return;
    }
    this.onFragment(frame);
  }

  protected onConnectionClosed(): void {
    this.resolveCloseReason(new CloseReason(CloseCode.CLOSED_ABNORMALLY, 'Connection was closed without a close frame'));
    this.stopPinger();
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.incoming.close();
  }

  /** Sends Close, then waits for the peer's Close at most `closeTimeout` before dropping the connection. */
  async close(requested: CloseReason = new CloseReason(CloseCode.NORMAL)): Promise<void> {
    if (!this.connection.isStarted) throw notOpenError();
    if (this.hasFlag(CLOSING) || this.connection.isClosed) return;
    const reason = fitCloseReason(requested);
    const frame = new Frame.Close(reason); // throws on a code that may not go on the wire
    this.beginClosing(reason);
    this.closeTimer = setTimeout(() => this.connection.destroy(), this.settings.closeTimeout);
    this.closeTimer.unref();
    this.connection.pump(); // reading may be paused on a full `incoming`
    await this.write(frame).catch(ignore);
  }

  sendFrame(frame: Frame): Promise<void> {
    if (frame.frameType === FrameType.CLOSE) return this.close(frame.readReason() ?? undefined);
    return this.write(frame);
  }

  protected afterHandler(failure: CloseReason | undefined): Promise<void> {
    return this.close(failure ?? new CloseReason(CloseCode.NORMAL));
  }

  protected closeConnection(reason: CloseReason): void {
    this.beginClosing(reason);
    this.stopReceiving();
    // Messages parsed before the bad frame or the peer's Close are already in the handler's
    // hands: its answers (an echo) go out within this turn, so the Close waits for the turn to end.
    setImmediate(() => this.sendCloseAndEnd(reason));
  }

  private beginClosing(reason: CloseReason): void {
    this.setFlag(CLOSING, true);
    this.resolveCloseReason(reason);
    this.stopPinger();
    this.reassembly = undefined;
  }

  private fail(code: CloseCode, message: string): void {
    this.onProtocolError(new WebSocketProtocolError(code, message));
  }

  private onFragment(frame: Frame): void {
    const message = (this.reassembly ??= new Reassembly(frame.frameType, this.hasFlag(INFLATED_MESSAGE)));
    message.bytes += frame.data.length;
    if (message.bytes > this.settings.maxMessageSize) {
      this.fail(CloseCode.TOO_BIG, `Message exceeds maxMessageSize ${this.settings.maxMessageSize}`);
      return;
    }
    // Empty fragments add no bytes: only a count bounds them (RFC 6455 §10.4).
    if (++message.count > this.settings.maxFragments) {
      this.fail(CloseCode.VIOLATED_POLICY, `Message exceeds maxFragments ${this.settings.maxFragments}`);
      return;
    }
    const utf8 = message.utf8;
    if (utf8 !== undefined && !utf8.update(frame.data)) {
      this.fail(CloseCode.NOT_CONSISTENT, 'Text message is not valid UTF-8');
      return;
    }
    message.parts.push(frame.data);
    if (!frame.fin) return;

    const data = Buffer.concat(message.parts, message.bytes);
    this.reassembly = undefined;
    if (message.frameType === FrameType.TEXT) {
      if (utf8 !== undefined && !utf8.finish()) {
        this.fail(CloseCode.NOT_CONSISTENT, 'Text message ends inside a UTF-8 sequence');
        return;
      }
      this.incoming.offer(new Frame.Text(true, data));
    } else {
      this.incoming.offer(new Frame.Binary(true, data));
    }
  }

  private onPeerClose(payload: Buffer): void {
    let reason = new CloseReason(CloseCode.NORMAL);
    if (payload.length === 1) {
      this.fail(CloseCode.PROTOCOL_ERROR, 'Close frame with a 1-byte payload');
      return;
    }
    if (payload.length >= 2) {
      const code = payload.readUInt16BE(0);
      if (!isValidWireCloseCode(code)) {
        this.fail(CloseCode.PROTOCOL_ERROR, `Invalid close code ${code}`);
        return;
      }
      const message = payload.subarray(2);
      if (!isValidUtf8(message)) {
        this.fail(CloseCode.NOT_CONSISTENT, 'Close reason is not valid UTF-8');
        return;
      }
      reason = new CloseReason(code, message.toString('utf8'));
    }
    // Either way the server closes the TCP connection first (RFC 6455 §7.1.1).
    if (this.hasFlag(CLOSING)) {
      this.stopReceiving();
      this.endAfterQueued();
    } else {
      this.closeConnection(reason);
    }
  }

  private schedulePing(): void {
    this.stopPinger();
    if (!this.connection.isStarted || this.pingInterval <= 0 || this.hasFlag(CLOSING) || this.connection.isClosed) return;
    this.pingerTimer = setTimeout(pingNow, this.pingInterval, this);
    this.pingerTimer.unref();
  }

  /** @internal When the ping timer fires. */
  ping(): void {
    const payload = randomBytes(8);
    this.pingPayload = payload;
    this.write(new Frame.Ping(payload)).catch(ignore);
    this.pingerTimer = setTimeout(() => {
      BaseWebSocketSession.logger.debug(`No pong on ${this.call.path} within ${this.pongTimeout} ms: closing`);
      this.close(new CloseReason(CloseCode.INTERNAL_ERROR, 'Ping timeout')).catch(ignore);
    }, this.pongTimeout);
    this.pingerTimer.unref();
  }

  private onPong(payload: Buffer): void {
    if (this.pingPayload === undefined || !payload.equals(this.pingPayload)) return;
    this.schedulePing();
  }

  private stopPinger(): void {
    if (this.pingerTimer !== undefined) clearTimeout(this.pingerTimer);
    this.pingerTimer = undefined;
    this.pingPayload = undefined;
  }
}

/** A fragmented message being joined: made at its first fragment and dropped once whole, so a session between messages keeps none of it. */
class Reassembly {
  readonly parts: Buffer[] = [];
  bytes = 0;
  count = 0;
  /** Compressed text is checked here once inflated; uncompressed text was checked by the frame parser as it arrived. */
  readonly utf8: Utf8Validator | undefined;

  constructor(
    readonly frameType: FrameType,
    inflated: boolean,
  ) {
    this.utf8 = inflated && frameType === FrameType.TEXT ? new Utf8Validator() : undefined;
  }
}
