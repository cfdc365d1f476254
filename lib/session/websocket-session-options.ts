/**
 * Session options as users give them (module-wide, per route, or to
 * WebSocketUpgrade), and the settings they resolve to once defaults are in.
 */
import { JsonWebSocketConverter, type WebSocketConverter } from './websocket-converter.js';

export interface WebSocketSessionOptions {
  /** Largest frame, and largest reassembled message in a default session, in bytes. Default 64 MiB. */
  maxFrameSize?: number;
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
  pingInterval: 0,
  timeout: 15_000,
  closeTimeout: 5_000,
  incomingCapacity: 64,
  incomingMaxBytes: 1024 * 1024,
};

/** Smallest value of each numeric option; `timeout: 0` would fail every ping at once. */
const MINIMUM = { maxFrameSize: 1, pingInterval: 0, timeout: 1, closeTimeout: 0 } as const;
/** Node's timers clamp longer delays to 1 ms; it is also far above any sane frame size. */
const MAXIMUM = 2 ** 31 - 1;

/** Throws naming the option unless the value is an integer from `minimum` to 2^31 - 1. */
export function checkIntegerOption(name: string, value: unknown, minimum: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum || value > MAXIMUM) {
    throw new TypeError(`WebSockets option "${name}" must be an integer from ${minimum} to ${MAXIMUM}, got ${String(value)}`);
  }
  return value;
}

/** Later layers override earlier ones; throws naming the option when one is invalid. */
export function resolveSessionSettings(...layers: Array<WebSocketSessionOptions | undefined>): SessionSettings {
  const settings: SessionSettings = { ...DEFAULTS, converter: new JsonWebSocketConverter() };
  for (const layer of layers) {
    if (layer === undefined) continue;
    for (const [name, minimum] of Object.entries(MINIMUM) as Array<[keyof typeof MINIMUM, number]>) {
      if (layer[name] !== undefined) settings[name] = checkIntegerOption(name, layer[name], minimum);
    }
    if (layer.converter !== undefined) settings.converter = layer.converter;
  }
  return settings;
}
