/**
 * permessage-deflate (RFC 7692) as an extension factory: its options,
 * checked at startup, and the server side of its negotiation. Offers are
 * tried in the client's order; one with an unknown, repeated or invalid
 * parameter, or one whose limits the server cannot honour, is declined
 * rather than failing the handshake (§5).
 */
import { describeValue } from '../protocol/describe-value.js';
import type { Frame } from '../protocol/frame.js';
import {
  WebSocketExtensionHeader,
  type WebSocketExtension,
  type WebSocketExtensionFactory,
  type WebSocketExtensionLimits,
} from '../protocol/websocket-extension.js';
import { checkIntegerOption } from '../session/websocket-session-options.js';
import { PerMessageDeflateExtension, type DeflateParameters } from './permessage-deflate.extension.js';

export interface PerMessageDeflateOptions {
  /** zlib compression level, 0 (none) to 9 (best); -1 is zlib's default (6). Default -1. */
  compressionLevel?: number;
  /**
   * The server starts each message with an empty compression context: less
   * memory kept per session between messages, less compression. Default false
   * (the server still agrees when a client asks for it).
   */
  serverNoContextTakeover?: boolean;
  /** Asks clients to start each message with an empty context. Default false. */
  clientNoContextTakeover?: boolean;
  /** Largest LZ77 window the server compresses with, as bits: 9 (512 bytes) to 15 (32 KiB). Default 15. */
  serverMaxWindowBits?: number;
  /**
   * Largest LZ77 window clients may compress with, 8 to 15; below 15, offers
   * that cannot take a limit (no `client_max_window_bits`) are declined. Default 15.
   */
  clientMaxWindowBits?: number;
  /** Messages of fewer bytes go out uncompressed (Ktor's `compressIfBiggerThan`). Default 1024. */
  threshold?: number;
  /** Asked for each outgoing message at or over `threshold` (its first frame): false sends it uncompressed. */
  compressIf?: (frame: Frame) => boolean;
}

export type PerMessageDeflateConfig = Required<Omit<PerMessageDeflateOptions, 'compressIf'>> & Pick<PerMessageDeflateOptions, 'compressIf'>;

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/** As `ws`: below about 1 KiB, deflate saves little and costs a zlib round trip. */
const DEFAULT_THRESHOLD = 1024;

/** A deflate option named as users write it in the module or route options. */
const checkInteger = (name: string, value: unknown, minimum: number, maximum?: number) =>
  checkIntegerOption(`deflate.${name}`, value, minimum, maximum);

function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`WebSockets option "deflate.${name}" must be a boolean, got ${describeValue(value)}`);
  return value;
}

export function resolveDeflateConfig(options: PerMessageDeflateOptions): PerMessageDeflateConfig {
  if (options.compressIf !== undefined && typeof options.compressIf !== 'function') {
    throw new TypeError(`WebSockets option "deflate.compressIf" must be a function, got ${describeValue(options.compressIf)}`);
  }
  return {
    compressionLevel: checkInteger('compressionLevel', options.compressionLevel ?? -1, -1, 9),
    serverNoContextTakeover: checkBoolean('serverNoContextTakeover', options.serverNoContextTakeover ?? false),
    clientNoContextTakeover: checkBoolean('clientNoContextTakeover', options.clientNoContextTakeover ?? false),
    // zlib turns a raw deflate window of 8 bits into 9, so the server cannot promise 8.
    serverMaxWindowBits: checkInteger('serverMaxWindowBits', options.serverMaxWindowBits ?? 15, 9, 15),
    clientMaxWindowBits: checkInteger('clientMaxWindowBits', options.clientMaxWindowBits ?? 15, 8, 15),
    threshold: checkInteger('threshold', options.threshold ?? DEFAULT_THRESHOLD, 0),
    compressIf: options.compressIf,
  };
}

/** A window-bits value as RFC 7692 §7.1.2 writes it: 8 to 15, no leading zero. */
function windowBits(value: string | true): number | undefined {
  return typeof value === 'string' && /^(?:8|9|1[0-5])$/.test(value) ? Number(value) : undefined;
}

interface Offer {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true`: offered without a value (the client can take a limit but sets none). */
  clientMaxWindowBits: number | true | undefined;
}

/** An offer's parameters, or undefined when one is unknown, repeated or malformed. */
function readOffer(header: WebSocketExtensionHeader): Offer | undefined {
  const parameters = header.parseParameters();
  if (parameters === undefined) return undefined;
  const offer: Offer = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  for (const [name, value] of parameters) {
    switch (name) {
      case 'server_no_context_takeover':
        if (value !== true) return undefined;
        offer.serverNoContextTakeover = true;
        break;
      case 'client_no_context_takeover':
        if (value !== true) return undefined;
        offer.clientNoContextTakeover = true;
        break;
      case 'server_max_window_bits':
        offer.serverMaxWindowBits = windowBits(value);
        if (offer.serverMaxWindowBits === undefined) return undefined;
        break;
      case 'client_max_window_bits':
        if (value === true) {
          offer.clientMaxWindowBits = true;
        } else {
          offer.clientMaxWindowBits = windowBits(value);
          if (offer.clientMaxWindowBits === undefined) return undefined;
        }
        break;
      default:
        return undefined;
    }
  }
  return offer;
}

/** What the server agrees to for an offer, or undefined when it cannot. */
function agree(offer: Offer, config: PerMessageDeflateConfig): DeflateParameters | undefined {
  const serverWindowBits = Math.min(config.serverMaxWindowBits, offer.serverMaxWindowBits ?? 15);
  if (serverWindowBits < 9) return undefined;
  let clientWindowBits = typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : 15;
  if (config.clientMaxWindowBits < 15) {
    // The server may only limit a client that said it can be limited (§7.1.2.2).
    if (offer.clientMaxWindowBits === undefined) return undefined;
    clientWindowBits = Math.min(clientWindowBits, config.clientMaxWindowBits);
  }
  return {
    serverNoContextTakeover: offer.serverNoContextTakeover || config.serverNoContextTakeover,
    clientNoContextTakeover: offer.clientNoContextTakeover || config.clientNoContextTakeover,
    serverWindowBits,
    clientWindowBits,
    answerServerWindowBits: offer.serverMaxWindowBits !== undefined || serverWindowBits < 15,
    answerClientWindowBits: offer.clientMaxWindowBits !== undefined && clientWindowBits < 15,
  };
}

function responseHeader(parameters: DeflateParameters): WebSocketExtensionHeader {
  const answer: string[] = [];
  if (parameters.serverNoContextTakeover) answer.push('server_no_context_takeover');
  if (parameters.clientNoContextTakeover) answer.push('client_no_context_takeover');
  if (parameters.answerServerWindowBits) answer.push(`server_max_window_bits=${parameters.serverWindowBits}`);
  if (parameters.answerClientWindowBits) answer.push(`client_max_window_bits=${parameters.clientWindowBits}`);
  return new WebSocketExtensionHeader(PERMESSAGE_DEFLATE, answer);
}

export class PerMessageDeflateFactory implements WebSocketExtensionFactory<PerMessageDeflateConfig> {
  readonly name = PERMESSAGE_DEFLATE;
  readonly rsv1 = true;
  readonly rsv2 = false;
  readonly rsv3 = false;
  readonly config: PerMessageDeflateConfig;

  constructor(options: PerMessageDeflateOptions = {}) {
    this.config = resolveDeflateConfig(options);
  }

  negotiate(offers: readonly WebSocketExtensionHeader[], limits: WebSocketExtensionLimits): WebSocketExtension | undefined {
    for (const header of offers) {
      const offer = readOffer(header);
      const parameters = offer === undefined ? undefined : agree(offer, this.config);
      if (parameters !== undefined) return new PerMessageDeflateExtension(this, responseHeader(parameters), parameters, limits);
    }
    return undefined;
  }
}

/** The permessage-deflate factory, for `extensions: [...]` lists; `deflate: options` is the shortcut. */
export function permessageDeflate(options: PerMessageDeflateOptions = {}): PerMessageDeflateFactory {
  return new PerMessageDeflateFactory(options);
}
