/**
 * Converters for `sendSerialized` / `receiveDeserialized`, as Ktor's
 * `contentConverter`. JSON is the default.
 */
import { Frame } from '../protocol/frame.js';
import { FrameType } from '../protocol/frame-type.js';

export interface WebSocketConverter {
  /** Turns a value into the frame that carries it. */
  serialize(value: unknown): Frame;
  /** Turns a received data frame back into a value; throws WebSocketDeserializeError when it cannot. */
  deserialize(frame: Frame): unknown;
}

export class WebSocketDeserializeError extends Error {
  constructor(
    message: string,
    readonly frame: Frame,
  ) {
    super(message);
    this.name = 'WebSocketDeserializeError';
  }
}

/** JSON in Text frames; Binary frames are read as UTF-8 JSON too. */
export class JsonWebSocketConverter implements WebSocketConverter {
  serialize(value: unknown): Frame {
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`Cannot serialize ${typeof value} as JSON`);
    return new Frame.Text(text);
  }

  deserialize(frame: Frame): unknown {
    if (frame.frameType.controlFrame || !frame.fin) {
      throw new WebSocketDeserializeError(`Expected a whole Text or Binary message, got ${frame}`, frame);
    }
    try {
      return JSON.parse(frame.readText());
    } catch (error) {
      throw new WebSocketDeserializeError(`Invalid JSON in ${frame.frameType === FrameType.TEXT ? 'text' : 'binary'} message: ${(error as Error).message}`, frame);
    }
  }
}
