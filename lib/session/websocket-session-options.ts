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

const NUMERIC_OPTIONS = ['maxFrameSize', 'pingInterval', 'timeout', 'closeTimeout'] as const;

/** Later layers override earlier ones; throws naming the option when one is invalid. */
export function resolveSessionSettings(...layers: Array<WebSocketSessionOptions | undefined>): SessionSettings {
  const settings: SessionSettings = { ...DEFAULTS, converter: new JsonWebSocketConverter() };
  for (const layer of layers) {
    if (layer === undefined) continue;
    for (const name of NUMERIC_OPTIONS) {
      const value = layer[name];
      if (value === undefined) continue;
      const minimum = name === 'maxFrameSize' ? 1 : 0;
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
        throw new TypeError(`WebSockets option "${name}" must be an integer >= ${minimum}, got ${String(value)}`);
      }
      settings[name] = value;
    }
    if (layer.converter !== undefined) settings.converter = layer.converter;
  }
  return settings;
}
