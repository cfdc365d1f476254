/**
 * What a topic's message is on the wire: the content a publish takes turned
 * into the payload a broker carries, and that payload back into the frame
 * each subscriber is sent, made once per process (once per converter for a
 * published value), through the topic's envelope when it has one.
 */
import type { LoggerService } from '@nestjs/common';
import type { BrokerMessage, TopicPayload } from '../broker/websocket-broker.js';
import { describeValue } from '../protocol/describe-value.js';
import { Frame, frameOf } from '../protocol/frame.js';
import { FrameType } from '../protocol/frame-type.js';
import type { WebSocketServerSession } from '../session/websocket-session.js';
import type { TopicMessage, TopicOptions } from './topic-options.js';

type Session = WebSocketServerSession;

/** The frame of one message, made once for all its subscribers here (once per converter for a published value). */
export class MessageFrames {
  /** Undefined until made; null when there is none for all: a value (per converter), or an envelope that threw. */
  private shared: Frame | null | undefined;
  private byConverter: Map<Session['converter'], Frame | undefined> | undefined;

  constructor(
    private readonly options: TopicOptions | undefined,
    private readonly message: BrokerMessage,
    private readonly logger: LoggerService,
  ) {}

  sendTo(session: Session): void {
    const frame = this.frameFor(session);
    // A send to a subscriber that is leaving rejects quietly (ClosedSendChannelError): it was counted out already.
    if (frame !== undefined) session.send(frame).catch(() => undefined);
  }

  private frameFor(session: Session): Frame | undefined {
    if (this.shared === undefined) this.shared = this.sharedFrame();
    if (this.shared !== null) return this.shared;
    const { payload } = this.message;
    if (payload.type !== 'value' || this.options?.envelope !== undefined) return undefined;
    this.byConverter ??= new Map();
    if (!this.byConverter.has(session.converter)) this.byConverter.set(session.converter, this.serialized(payload.value, session));
    return this.byConverter.get(session.converter);
  }

  private sharedFrame(): Frame | null {
    const { payload } = this.message;
    const envelope = this.options?.envelope;
    if (envelope !== undefined) return this.enveloped(envelope) ?? null;
    if (payload.type === 'text') return new Frame.Text(true, payload.bytes);
    if (payload.type === 'binary') return new Frame.Binary(payload.bytes);
    return null;
  }

  private serialized(value: unknown, session: Session): Frame | undefined {
    try {
      return session.converter.serialize(value);
    } catch (error) {
      this.logger.warn(
        `A value published to ${JSON.stringify(this.message.topic)} could not be serialized by ${session.converter.constructor.name}: ` +
          `${(error as Error)?.message}; its subscribers on ${session.call.route} did not receive it`,
      );
      return undefined;
    }
  }

  /** The envelope's frame; undefined (logged) when it throws, so that message reaches no subscriber here. */
  private enveloped(envelope: NonNullable<TopicOptions['envelope']>): Frame | undefined {
    const { topic, payload, position } = this.message;
    const message: TopicMessage =
      payload.type === 'value'
        ? { topic, position, type: 'value', value: payload.value }
        : payload.type === 'text'
          ? { topic, position, type: 'text', text: Buffer.from(payload.bytes.buffer, payload.bytes.byteOffset, payload.bytes.length).toString('utf8') }
          : { topic, position, type: 'binary', bytes: payload.bytes };
    try {
      return frameOf(envelope(message));
    } catch (error) {
      this.logger.warn(`The envelope of topic ${JSON.stringify(topic)} threw: ${(error as Error)?.message}; its subscribers here did not receive that message`);
      return undefined;
    }
  }
}

/** What a publish carries: text as its UTF-8 bytes, bytes, or a whole Text or Binary frame's payload. */
export function payloadOf(content: string | Uint8Array | Frame, method: string): TopicPayload {
  if (typeof content === 'string') return { type: 'text', bytes: Buffer.from(content, 'utf8') };
  if (content instanceof Frame) {
    if (!content.fin || (content.frameType !== FrameType.TEXT && content.frameType !== FrameType.BINARY)) {
      throw new TypeError(`WebSocketSessions.${method}(): a topic takes whole messages (a string, bytes, or a Text or Binary frame with fin), got ${content}`);
    }
    return { type: content.frameType === FrameType.TEXT ? 'text' : 'binary', bytes: content.data };
  }
  if (content instanceof Uint8Array) return { type: 'binary', bytes: content };
  throw new TypeError(`WebSocketSessions.${method}(): a message is a string, bytes or a Frame, got ${describeValue(content)}`);
}
