/**
 * The extension API, in Ktor's shape: a factory names an extension, claims
 * RSV bits and holds its config; on each handshake it reads the client's
 * offers and either declines or returns the session's extension, which then
 * processes every frame going out and coming in (RFC 6455 §9).
 */
import type { Frame } from './frame.js';
import { HandshakeError, isToken } from './handshake.js';

/** One entry of a `Sec-WebSocket-Extensions` header: a name and its `name` or `name=value` parameters. */
export class WebSocketExtensionHeader {
  constructor(
    readonly name: string,
    readonly parameters: readonly string[] = [],
  ) {}

  /**
   * The parameters as name → value (`true` when a parameter has no value),
   * quotes removed; `undefined` when a name repeats, which makes an offer invalid.
   */
  parseParameters(): Map<string, string | true> | undefined {
    const parsed = new Map<string, string | true>();
    for (const parameter of this.parameters) {
      const equals = parameter.indexOf('=');
      const name = (equals < 0 ? parameter : parameter.slice(0, equals)).trim().toLowerCase();
      if (parsed.has(name)) return undefined;
      parsed.set(name, equals < 0 ? true : unquote(parameter.slice(equals + 1).trim()));
    }
    return parsed;
  }

  toString(): string {
    return [this.name, ...this.parameters].join('; ');
  }
}

function unquote(value: string): string {
  return value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value;
}

/** What a session lets its extensions do; an extension must hold incoming data to it. */
export interface WebSocketExtensionLimits {
  /** Largest payload, in bytes, an extension may produce from one incoming message: the session's `maxMessageSize`. */
  maxIncomingSize: number;
}

/** A negotiated extension, one per session: every data and control frame passes through it. */
export interface WebSocketExtension {
  readonly factory: WebSocketExtensionFactory;
  /** What the server answers in `Sec-WebSocket-Extensions` for it. */
  readonly response: WebSocketExtensionHeader;
  /** A frame on its way out, in the order frames are sent. May be async; the session keeps the order. */
  processOutgoingFrame(frame: Frame): Frame | Promise<Frame>;
  /**
   * A frame as it came off the wire, in order. May be async; the session reads
   * nothing more until it settles. Throw a WebSocketProtocolError to close the
   * session with its code.
   */
  processIncomingFrame(frame: Frame): Frame | Promise<Frame>;
  /** The connection ended: free what the extension holds. Not called for an upgrade refused before its 101, so allocate on first use. */
  dispose(): void;
}

/** An extension the server can offer: its name, the RSV bits it uses, its config, and its negotiation. */
export interface WebSocketExtensionFactory<Config = unknown> {
  /** The extension token clients offer, e.g. `permessage-deflate`. */
  readonly name: string;
  readonly rsv1: boolean;
  readonly rsv2: boolean;
  readonly rsv3: boolean;
  readonly config: Config;
  /**
   * The client's offers of this extension, in its order of preference: the
   * session's extension for the first one acceptable, or undefined to decline all.
   */
  negotiate(offers: readonly WebSocketExtensionHeader[], limits: WebSocketExtensionLimits): WebSocketExtension | undefined;
}

/** The RSV bits an extension claims, as the frame header's bits 4-6 read as a number. */
export const rsvBits = (factory: WebSocketExtensionFactory): number =>
  (factory.rsv1 ? 4 : 0) | (factory.rsv2 ? 2 : 0) | (factory.rsv3 ? 1 : 0);

/** Checks a set of factories at startup: distinct names, no RSV bit claimed twice. */
export function checkExtensionFactories(factories: readonly WebSocketExtensionFactory[]): void {
  const names = new Set<string>();
  let claimed = 0;
  for (const factory of factories) {
    const key = factory.name.toLowerCase();
    if (names.has(key)) throw new TypeError(`WebSockets extension "${factory.name}" is installed twice`);
    names.add(key);
    const bits = rsvBits(factory);
    if ((claimed & bits) !== 0) {
      throw new TypeError(`WebSockets extension "${factory.name}" claims an RSV bit another installed extension already uses`);
    }
    claimed |= bits;
  }
}

/** `token` or `token=value`, where value is a token or a quoted string (RFC 6455 §9.1). */
const EXTENSION_PARAM = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:\s*=\s*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[^"\\]|\\.)*"))?$/;

/** Splits on `separator` except inside quoted strings; empty parts are kept. */
function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === '\\') i++;
      else if (char === '"') quoted = false;
    } else if (char === '"') {
      quoted = true;
    } else if (char === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** The offers in `Sec-WebSocket-Extensions`, in order; HandshakeError(400) for a malformed one. */
export function parseExtensionOffers(value: string | string[] | undefined): WebSocketExtensionHeader[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  const parsed: WebSocketExtensionHeader[] = [];
  // Empty list elements are allowed (RFC 7230 §7); empty parameters are not.
  for (const offer of splitOutsideQuotes(joined, ',').map((part) => part.trim())) {
    if (offer.length === 0) continue;
    const [name, ...parameters] = splitOutsideQuotes(offer, ';').map((part) => part.trim());
    if (!isToken(name) || parameters.some((parameter) => !EXTENSION_PARAM.test(parameter))) {
      throw new HandshakeError(400, `Sec-WebSocket-Extensions has a malformed offer: ${offer}`);
    }
    parsed.push(new WebSocketExtensionHeader(name, parameters));
  }
  return parsed;
}

/** What most sessions negotiate: one array for all of them, which they keep for their life. */
const NO_EXTENSIONS: readonly WebSocketExtension[] = Object.freeze([]);

/**
 * Server-side negotiation: each installed extension sees the client's offers
 * of its name and may accept one. The result is in the order the client
 * offered them, which is the order outgoing frames pass through them.
 */
export function negotiateExtensions(
  factories: readonly WebSocketExtensionFactory[],
  offers: readonly WebSocketExtensionHeader[],
  limits: WebSocketExtensionLimits,
): readonly WebSocketExtension[] {
  if (factories.length === 0 || offers.length === 0) return NO_EXTENSIONS;
  const accepted: Array<{ at: number; extension: WebSocketExtension }> = [];
  for (const factory of factories) {
    const key = factory.name.toLowerCase();
    const mine = offers.filter((offer) => offer.name.toLowerCase() === key);
    if (mine.length === 0) continue;
    const extension = factory.negotiate(mine, limits);
    if (extension !== undefined) accepted.push({ at: offers.indexOf(mine[0]), extension });
  }
  return accepted.length === 0 ? NO_EXTENSIONS : accepted.sort((a, b) => a.at - b.at).map(({ extension }) => extension);
}
