/**
 * permessage-deflate (RFC 7692) from the test client's side, on node:zlib
 * and independent of the library: the client's compressor (the window and
 * context mode it announced), the inflater for the server's messages (the
 * window and context mode the server agreed to), and the handshake rules an
 * answer to a list of offers must follow (§5, §7.1), with what a route's
 * documented options add to them.
 */
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { TAIL } from '../support/deflate.js';
import type { MessageInflater } from './player.js';

/** An empty final stored block. After TAIL it ends the stream cleanly only if the message's data ended on a block boundary. */
const FINAL_EMPTY_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff]);
const MAX_WINDOW = 32768;

/** One direction's LZ77 state (§7.1.1, §7.1.2): window bits, and whether the context carries over between messages. */
export interface ContextMode {
  windowBits: number;
  takeover: boolean;
}

const lastBytes = (data: Buffer) => (data.length > MAX_WINDOW ? data.subarray(data.length - MAX_WINDOW) : data);
const orUndefined = (data: Buffer) => (data.length > 0 ? data : undefined);

/**
 * The client's compressor. With context takeover, earlier messages are the
 * deflate dictionary: the references a continuous stream could make, done
 * synchronously. A message may go in pieces, each sync-flushed (a streaming
 * sender's fragments); only the last piece loses the tail.
 */
export class Compressor {
  private history: Buffer = Buffer.alloc(0);

  constructor(
    private readonly mode: ContextMode,
    private readonly level = 6,
  ) {}

  compressPieces(pieces: Buffer[]): Buffer[] {
    let context: Buffer = this.mode.takeover ? this.history : Buffer.alloc(0);
    const out = pieces.map((piece) => {
      // windowBits 8 becomes 9 in Node, whose matches reach at most 250 bytes back: within an 8-bit window.
      const data = deflateRawSync(piece, {
        level: this.level,
        windowBits: this.mode.windowBits,
        finishFlush: constants.Z_SYNC_FLUSH,
        dictionary: orUndefined(context),
      });
      context = lastBytes(Buffer.concat([context, piece]));
      return data;
    });
    const last = out[out.length - 1];
    if (!last.subarray(-4).equals(TAIL)) throw new Error('zlib sync flush did not end with 00 00 ff ff');
    out[out.length - 1] = last.subarray(0, last.length - TAIL.length);
    if (this.mode.takeover) this.history = context;
    return out;
  }
}

/**
 * Inflates the server's compressed messages (§7.2.2) with exactly the
 * window it agreed to: a match reaching further back fails. Each message
 * must end on a block boundary once the tail is back (§7.2.1).
 */
export class Decompressor implements MessageInflater {
  private history: Buffer = Buffer.alloc(0);

  constructor(private readonly mode: ContextMode) {}

  inflate(payload: Buffer): Buffer {
    // What is left after the removal ends inside an empty stored block's header, never on 0xff.
    if (payload.subarray(-4).equals(TAIL)) throw new Error('the payload still ends with 00 00 ff ff (§7.2.1 removes it)');
    const out = inflateRawSync(Buffer.concat([payload, TAIL, FINAL_EMPTY_BLOCK]), {
      windowBits: this.mode.windowBits,
      dictionary: this.mode.takeover ? orUndefined(this.history) : undefined,
      // zlib takes a match past its window if the bytes are still in its output chunk; 64-byte chunks (the least) make the window strict.
      chunkSize: this.mode.windowBits < 15 ? 64 : undefined,
    });
    if (this.mode.takeover) this.history = lastBytes(Buffer.concat([this.history, out]));
    return out;
  }
}

// ------------------------------------------------------------ negotiation

export const PERMESSAGE_DEFLATE = 'permessage-deflate';

interface HeaderElement {
  name: string;
  text: string;
  parameters: Array<[string, string | true]>;
}

/** `Sec-WebSocket-Extensions` elements (RFC 6455 §9.1), quoted values unquoted; enough for the headers used here. */
function parseElements(value: string): HeaderElement[] {
  return value
    .split(',')
    .map((text) => text.trim())
    .filter((text) => text.length > 0)
    .map((text) => {
      const [name, ...parameters] = text.split(';').map((part) => part.trim());
      return {
        name: name.toLowerCase(),
        text,
        parameters: parameters.map((parameter): [string, string | true] => {
          const equals = parameter.indexOf('=');
          if (equals < 0) return [parameter.toLowerCase(), true];
          const raw = parameter.slice(equals + 1).trim();
          return [parameter.slice(0, equals).trim().toLowerCase(), raw.startsWith('"') ? raw.slice(1, -1) : raw];
        }),
      };
    });
}

export interface DeflateParameters {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  /** `true`: offered without a value (the client can take a limit). */
  clientMaxWindowBits: number | true | undefined;
}

/** 8 to 15, no leading zero (§7.1.2.1). */
const windowBits = (value: string | true) => (typeof value === 'string' && /^(?:8|9|1[0-5])$/.test(value) ? Number(value) : undefined);

/** The element's parameters, or why they are invalid in an offer or an answer (§7.1). */
function readParameters(element: HeaderElement, role: 'offer' | 'answer'): DeflateParameters | string {
  const result: DeflateParameters = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [name, value] of element.parameters) {
    if (seen.has(name)) return `${name} repeated`;
    seen.add(name);
    if (name === 'server_no_context_takeover' || name === 'client_no_context_takeover') {
      if (value !== true) return `${name} with a value`;
      result[name === 'server_no_context_takeover' ? 'serverNoContextTakeover' : 'clientNoContextTakeover'] = true;
    } else if (name === 'server_max_window_bits') {
      result.serverMaxWindowBits = windowBits(value);
      if (result.serverMaxWindowBits === undefined) return `${name}=${String(value)}`;
    } else if (name === 'client_max_window_bits') {
      // Only an offer may leave the value out (§7.1.2.2).
      result.clientMaxWindowBits = role === 'offer' && value === true ? true : windowBits(value);
      if (result.clientMaxWindowBits === undefined) return `${name}=${String(value)}`;
    } else {
      return `unknown parameter ${name}`;
    }
  }
  return result;
}

/** Where an answer does not accept the offer as §7.1 allows; empty when it does. */
function answerProblems(offer: DeflateParameters, answer: DeflateParameters): string[] {
  const problems: string[] = [];
  if (offer.serverNoContextTakeover && !answer.serverNoContextTakeover) problems.push('server_no_context_takeover offered, not in the answer');
  if (offer.serverMaxWindowBits !== undefined && (answer.serverMaxWindowBits ?? 16) > offer.serverMaxWindowBits) {
    problems.push(`server_max_window_bits=${offer.serverMaxWindowBits} offered, answer ${answer.serverMaxWindowBits ?? 'without it'}`);
  }
  if (answer.clientMaxWindowBits !== undefined) {
    if (offer.clientMaxWindowBits === undefined) problems.push('client_max_window_bits in the answer, not offered');
    else if (typeof offer.clientMaxWindowBits === 'number' && (answer.clientMaxWindowBits as number) > offer.clientMaxWindowBits) {
      problems.push(`client_max_window_bits=${offer.clientMaxWindowBits} offered, answer ${String(answer.clientMaxWindowBits)}`);
    }
  }
  return problems;
}

/** A route's deflate settings, written out from the documented options and defaults (not read from the library). */
export interface DeflateSettings {
  /** permessage-deflate installed on the route at all. */
  enabled: boolean;
  threshold: number;
  serverNoContextTakeover: boolean;
  serverMaxWindowBits: number;
  clientNoContextTakeover: boolean;
  clientMaxWindowBits: number;
}

/** What both sides compress with once an offer was accepted. */
export interface Agreement {
  /** What the test client compresses with. */
  client: ContextMode;
  /** What the server's messages must inflate with. */
  server: ContextMode;
}

/**
 * Whether the route must, may or must not take an offer. Invalid offers are
 * declined (§5); zlib cannot compress with an 8-bit window, so a server may
 * decline server_max_window_bits=8; a route whose clientMaxWindowBits is
 * below 15 declines offers without client_max_window_bits (documented).
 */
function verdict(offer: DeflateParameters | string, settings: DeflateSettings): 'must' | 'may' | 'not' {
  if (typeof offer === 'string' || !settings.enabled) return 'not';
  if (settings.clientMaxWindowBits < 15 && offer.clientMaxWindowBits === undefined) return 'not';
  return offer.serverMaxWindowBits === 8 ? 'may' : 'must';
}

/**
 * Checks the 101's answer to the offers: at most one permessage-deflate
 * element, nothing not offered, parameters valid for an answer and
 * accepting one of the offers the route may take, up to the first it must
 * take (documented: the first it can honour), plus what the route's options
 * require it to ask of the client. Returns the problems found and, when
 * accepted, what each side compresses with: the answer's limits, lowered to
 * the route's own settings on the server side.
 */
export function checkNegotiation(
  settings: DeflateSettings,
  offerLines: readonly string[],
  answerLine: string | undefined,
): { problems: string[]; agreement: Agreement | undefined } {
  const offers = offerLines.flatMap(parseElements).filter((element) => element.name === PERMESSAGE_DEFLATE);
  const verdicts = offers.map((element) => ({ element, parameters: readParameters(element, 'offer') }));
  const firstMust = verdicts.findIndex(({ parameters }) => verdict(parameters, settings) === 'must');
  const candidates = verdicts
    .slice(0, firstMust < 0 ? undefined : firstMust + 1)
    .filter(({ parameters }) => verdict(parameters, settings) !== 'not');

  const answers = parseElements(answerLine ?? '');
  const problems = answers.filter((element) => element.name !== PERMESSAGE_DEFLATE).map((element) => `answered an extension not offered: ${element.text}`);
  const deflate = answers.filter((element) => element.name === PERMESSAGE_DEFLATE);
  if (deflate.length > 1) problems.push(`answered permessage-deflate ${deflate.length} times`);
  if (deflate.length === 0) {
    if (firstMust >= 0) problems.push(`declined an offer it must take: ${verdicts[firstMust].element.text}`);
    return { problems, agreement: undefined };
  }

  const answer = readParameters(deflate[0], 'answer');
  if (typeof answer === 'string') return { problems: [...problems, `invalid answer "${deflate[0].text}": ${answer}`], agreement: undefined };
  const accepted = candidates.find(({ parameters }) => answerProblems(parameters as DeflateParameters, answer).length === 0);
  if (accepted === undefined) {
    const why = candidates.map(({ element, parameters }) => `${element.text}: ${answerProblems(parameters as DeflateParameters, answer).join(', ')}`);
    problems.push(`answer "${deflate[0].text}" accepts none of the offers it may take (${why.join('; ') || 'none'})`);
    return { problems, agreement: undefined };
  }
  if (settings.clientNoContextTakeover && !answer.clientNoContextTakeover) problems.push('route sets clientNoContextTakeover, answer does not ask for it');
  if (settings.clientMaxWindowBits < 15 && ((answer.clientMaxWindowBits as number | undefined) ?? 16) > settings.clientMaxWindowBits) {
    problems.push(`route sets clientMaxWindowBits ${settings.clientMaxWindowBits}, answer ${deflate[0].text}`);
  }

  const offer = accepted.parameters as DeflateParameters;
  const offered = typeof offer.clientMaxWindowBits === 'number' ? offer.clientMaxWindowBits : 15;
  return {
    problems,
    agreement: {
      // A client keeps what it offered too: no context takeover it announced, no window above the one it named.
      client: {
        windowBits: (answer.clientMaxWindowBits as number | undefined) ?? offered,
        takeover: !answer.clientNoContextTakeover && !offer.clientNoContextTakeover,
      },
      server: {
        windowBits: Math.min(answer.serverMaxWindowBits ?? 15, settings.serverMaxWindowBits),
        takeover: !answer.serverNoContextTakeover && !settings.serverNoContextTakeover,
      },
    },
  };
}
