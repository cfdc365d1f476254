/**
 * Session options as users give them (module-wide, per route, or to
 * WebSocketUpgrade), and the settings they resolve to once defaults are in.
 */
import { describeValue } from '../protocol/describe-value.js';
import { JsonWebSocketConverter, type WebSocketConverter } from './websocket-converter.js';

export interface WebSocketSessionOptions {
  /** Largest frame the peer may send, in bytes; one byte more closes with 1009. Default 64 MiB. */
  maxFrameSize?: number;
  /**
   * Largest message a default session hands to `incoming`, in bytes, whether it came
   * in one frame or was reassembled from fragments; more closes with 1009. Defaults to
   * `maxFrameSize` (64 MiB): set it to take large messages in small frames. Raw
   * sessions do not reassemble: there only `maxFrameSize` applies.
   */
  maxMessageSize?: number;
  /**
   * Most frames one fragmented message may take in a default session; more closes
   * with 1008 (floods of tiny fragments, RFC 6455 §10.4). Default 65 536. Raw
   * sessions hand each fragment to the handler: it does not apply there.
   */
  maxFragments?: number;
  /**
   * Bytes a session may have queued in the socket's write buffer, not yet read by
   * the peer. A send that finds more than this queued closes the session with 1008
   * and rejects, as every send after it does. Sends that are awaited never get near it
   * (`send` waits for 'drain'); one frame larger than the limit still goes when
   * little is queued. Both kinds of session. Default 32 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Milliseconds without a byte from the peer after which the session is closed
   * with 1001 'Idle timeout'; 0 (the default) is off. Both kinds of session.
   */
  idleTimeout?: number;
  /** Milliseconds between pings a default session sends; 0 (the default) sends none. */
  pingInterval?: number;
  /** Milliseconds a default session waits for the pong before closing with 1011. Default 15 000. */
  timeout?: number;
  /** Milliseconds to wait for the peer's Close, or for queued data to leave, before dropping TCP. Default 5 000. */
  closeTimeout?: number;
  /** Converter for `sendSerialized` / `receiveDeserialized`. Default JSON. */
  converter?: WebSocketConverter;
}

export interface SessionSettings extends Required<WebSocketSessionOptions> {
  /** Frames queued in `incoming` before the socket is paused. */
  incomingCapacity: number;
  /** Payload bytes queued in `incoming` before the socket is paused. */
  incomingMaxBytes: number;
}

const DEFAULTS = {
  maxFrameSize: 64 * 1024 * 1024,
  maxMessageSize: 64 * 1024 * 1024,
  maxFragments: 65_536,
  maxBufferedBytes: 32 * 1024 * 1024,
  idleTimeout: 0,
  pingInterval: 0,
  timeout: 15_000,
  closeTimeout: 5_000,
  incomingCapacity: 64,
  incomingMaxBytes: 1024 * 1024,
};

/** Smallest value of each numeric option; `timeout: 0` would fail every ping at once. */
const MINIMUM = {
  maxFrameSize: 1,
  maxMessageSize: 1,
  maxFragments: 1,
  maxBufferedBytes: 1,
  idleTimeout: 0,
  pingInterval: 0,
  timeout: 1,
  closeTimeout: 0,
} as const;
/** Node's timers clamp longer delays to 1 ms; it is also far above any sane frame size. */
const MAXIMUM = 2 ** 31 - 1;

/** Throws naming the option unless the value is an integer from `minimum` to `maximum` (2^31 - 1 unless given). */
export function checkIntegerOption(name: string, value: unknown, minimum: number, maximum = MAXIMUM): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum || value > maximum) {
    throw new TypeError(`WebSockets option "${name}" must be an integer from ${minimum} to ${maximum}, got ${describeValue(value)}`);
  }
  return value;
}

/** Later layers override earlier ones; throws naming the option when one is invalid. */
export function resolveSessionSettings(...layers: Array<WebSocketSessionOptions | undefined>): SessionSettings {
  const settings: SessionSettings = { ...DEFAULTS, converter: new JsonWebSocketConverter() };
  let messageSizeSet = false;
  for (const layer of layers) {
    if (layer === undefined) continue;
    if (layer.maxMessageSize !== undefined) messageSizeSet = true;
    for (const [name, minimum] of Object.entries(MINIMUM) as Array<[keyof typeof MINIMUM, number]>) {
      if (layer[name] !== undefined) settings[name] = checkIntegerOption(name, layer[name], minimum);
    }
    if (layer.converter !== undefined) settings.converter = layer.converter;
  }
  // Unless set, it follows maxFrameSize: lowering maxFrameSize alone bounds messages too.
  if (!messageSizeSet) settings.maxMessageSize = settings.maxFrameSize;
  return settings;
}
