/**
 * The permessage-deflate (RFC 7692) case table, after the Autobahn|Testsuite
 * groups 12 (compression, different payloads) and 13 (compression,
 * different parameters), plus RFC 7692's own examples, edge cases and the
 * frames that must fail. A case names the route and the offers; its steps
 * are built once the handshake is checked, compressed by the test client as
 * agreed (node:zlib, ./deflate-codec.ts). Expected echoes are the messages
 * sent, compressed when deflate was agreed and they reach the route's
 * threshold: never anything the library computed.
 */
import type { PerMessageDeflateOptions } from 'nest-websocket-routes';
import type { FrameSpec } from '../support/raw-client.js';
import { BINARY, CLOSE, CONTINUATION, PING, PONG, pseudoRandom, sizeName, TEXT, utf8Text, type Chop, type Outcome, type Step, type Wire } from './cases.js';
import { Compressor, type Agreement, type DeflateSettings } from './deflate-codec.js';
import type { Message } from './player.js';

// ---------------------------------------------------------------- routes

/** An echo route and its deflate settings as documented (defaults filled in by hand). */
export interface DeflateRoute extends DeflateSettings {
  /** Under the controller's `deflate` prefix. */
  path: string;
  title: string;
  /** The route's `deflate` option; undefined: the module's. */
  option: boolean | PerMessageDeflateOptions | undefined;
}

const DEFAULTS = { enabled: true, threshold: 1024, serverNoContextTakeover: false, serverMaxWindowBits: 15, clientNoContextTakeover: false, clientMaxWindowBits: 15 };

/** The module's `deflate` option, which the `module` route inherits. */
export const MODULE_DEFLATE: PerMessageDeflateOptions = { threshold: 0 };

export const ROUTES = {
  module: { ...DEFAULTS, path: 'module', title: 'module-wide deflate { threshold: 0 }', option: undefined, threshold: 0 },
  defaults: { ...DEFAULTS, path: 'defaults', title: 'deflate: true (all defaults, threshold 1024)', option: true },
  serverLimited: {
    ...DEFAULTS,
    path: 'server-limited',
    title: 'deflate { threshold: 0, serverNoContextTakeover, serverMaxWindowBits: 10 }',
    option: { threshold: 0, serverNoContextTakeover: true, serverMaxWindowBits: 10 },
    threshold: 0,
    serverNoContextTakeover: true,
    serverMaxWindowBits: 10,
  },
  clientLimited: {
    ...DEFAULTS,
    path: 'client-limited',
    title: 'deflate { threshold: 0, clientNoContextTakeover, clientMaxWindowBits: 10, compressionLevel: 1 }',
    option: { threshold: 0, clientNoContextTakeover: true, clientMaxWindowBits: 10, compressionLevel: 1 },
    threshold: 0,
    clientNoContextTakeover: true,
    clientMaxWindowBits: 10,
  },
  off: { ...DEFAULTS, path: 'off', title: 'deflate: false', option: false, enabled: false },
} satisfies Record<string, DeflateRoute>;

// ---------------------------------------------------------------- client side

/** How the client frames one message. */
export interface Framing {
  /** Uncompressed (RSV1 clear) although deflate was agreed. */
  plain?: boolean;
  /** Plaintext pieces, each compressed with a sync flush: one frame each (a streaming sender). Default 1. */
  pieces?: number;
  /** Where to cut each piece's bytes (compressed, unless plain) into more frames, given its length. */
  cut?: (length: number) => number[];
}

/** `data` in `count` near-equal pieces (empty ones when it is shorter). */
function splitEven(data: Buffer, count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => data.subarray(Math.floor((i * data.length) / count), Math.floor(((i + 1) * data.length) / count)));
}

function cutAt(data: Buffer, positions: number[]): Buffer[] {
  const bounds = [0, ...positions, data.length];
  return bounds.slice(1).map((end, i) => data.subarray(bounds[i], end));
}

const halves = (length: number) => [length >> 1];
const quarters = (length: number) => [1, 2, 3].map((i) => Math.floor((i * length) / 4));
const everyOctet = (length: number) => Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);

/** The test client once the handshake is checked: compresses as agreed, and knows what each echo must look like. */
export class ClientSession {
  private readonly compressor: Compressor | undefined;

  constructor(
    readonly route: DeflateRoute,
    readonly agreement: Agreement | undefined,
  ) {
    this.compressor = agreement && new Compressor(agreement.client);
  }

  /** The message as frames: compressed when deflate was agreed (unless `plain`), RSV1 on the first frame only (§6.1). */
  frames(opcode: number, payload: Buffer, framing: Framing = {}): FrameSpec[] {
    const compressor = framing.plain ? undefined : this.compressor;
    const pieces = splitEven(payload, framing.pieces ?? 1);
    const data = compressor === undefined ? pieces : compressor.compressPieces(pieces);
    const chunks = data.flatMap((piece) => cutAt(piece, framing.cut?.(piece.length) ?? []));
    return chunks.map((chunk, i) => ({
      opcode: i === 0 ? opcode : CONTINUATION,
      payload: chunk,
      fin: i === chunks.length - 1,
      rsv: i === 0 && compressor !== undefined ? 4 : 0,
    }));
  }

  /** The echo due: the same message, compressed when deflate was agreed and it reaches the route's threshold. */
  echo(opcode: number, payload: Buffer): Message {
    return this.agreement === undefined ? { opcode, payload } : { opcode, payload, compressed: payload.length >= this.route.threshold };
  }

  /** Sends the messages in one go (64 KiB writes), then expects their echoes in order. */
  exchange(messages: Array<[opcode: number, payload: Buffer, framing?: Framing]>): Step[] {
    const wire = messages.flatMap(([opcode, payload, framing]) => this.frames(opcode, payload, framing));
    return [send(wire, 65536), expectEchoes(...messages.map(([opcode, payload]) => this.echo(opcode, payload)))];
  }
}

export interface DeflateCase {
  id: string;
  title: string;
  route: DeflateRoute;
  /** `Sec-WebSocket-Extensions` lines the client sends. */
  offers: string[];
  steps(session: ClientSession): Step[];
  outcome: Outcome;
}

export interface DeflateGroup {
  id: string;
  title: string;
  cases: DeflateCase[];
}

const send = (wire: Wire[], chop: Chop = 'bulk'): Step => ({ send: wire, chop });
const expectEchoes = (...messages: Message[]): Step => ({ expect: messages });
const OPEN: Outcome = { kind: 'open' };
const fails = (code: number): Outcome => ({ kind: 'close', code });
const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;

const bytes = (...values: number[]) => Buffer.from(values);
const utf8 = (text: string) => Buffer.from(text, 'utf8');

// ---------------------------------------------------------------- payloads

const WORDS = ['the', 'deflate', 'window', 'message', 'frame', 'κόσμε', 'Grüße', 'naïve', '日本語', '𝄞', 'compression', 'context', 'takeover', 'echo', 'octet', 'stream', 'LZ77', 'Huffman', 'block', 'flush'].map(utf8);

/** UTF-8 prose of exactly `size` bytes: words (some multi-byte) picked pseudo-randomly, padded with dots. */
function prose(size: number, seed: number): Buffer {
  const picks = pseudoRandom(Math.max(size, 1), seed);
  const out = Buffer.alloc(size, 0x2e);
  let offset = 0;
  for (let i = 0; ; i++) {
    const word = WORDS[picks[i % picks.length] % WORDS.length];
    if (offset + word.length + 1 > size) return out;
    offset += word.copy(out, offset);
    out[offset++] = 0x20;
  }
}

/** Binary records (a counter, a small field, fixed bytes): compresses well. */
function records(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i + 8 <= size; i += 8) {
    out.writeUInt32LE((seed * 100_000 + i / 8) >>> 0, i);
    out.writeUInt16LE((i * 7) % 977, i + 4);
    out[i + 6] = 0xfe;
    out[i + 7] = seed;
  }
  return out;
}

/** Prose and random printable ASCII in alternating runs of 32 to 287 bytes: valid UTF-8, half compressible. */
function mixedText(size: number, seed: number): Buffer {
  const runs = pseudoRandom(size, seed + 1000);
  const parts: Buffer[] = [];
  for (let length = 0, k = 0; length < size; k++) {
    const n = Math.min(size - length, 32 + runs[k % runs.length]);
    parts.push(k % 2 === 0 ? prose(n, seed + k) : Buffer.from(pseudoRandom(n, seed * 31 + k).map((b) => 0x20 + (b % 0x5f))));
    length += n;
  }
  return Buffer.concat(parts);
}

/** 64-byte blocks: fresh random, a copy of an earlier block (up to 32 KiB back), or a ramp. */
function mixedBinary(size: number, seed: number): Buffer {
  const choices = pseudoRandom(size, seed + 2000);
  const out = Buffer.alloc(size);
  for (let offset = 0, k = 0; offset < size; offset += 64, k++) {
    const end = Math.min(offset + 64, size);
    const choice = choices[k] % 4;
    const back = 64 * (1 + (choices[(k + 1) % choices.length] * 2) % 512);
    if (choice === 1 && offset >= back) out.copy(out, offset, offset - back, end - back);
    else if (choice === 2) for (let i = offset; i < end; i++) out[i] = i & 0xff;
    else pseudoRandom(end - offset, seed * 7919 + k).copy(out, offset);
  }
  return out;
}

/**
 * For each window of 2^9 to 2^14 bytes, a random block of 2^W + 100 bytes
 * twice: a compressor with a larger window copies it from further back
 * than 2^W, which an inflater of window W must refuse.
 */
const windowProbe = (): Buffer =>
  Buffer.concat([9, 10, 11, 12, 13, 14].flatMap((w) => {
    const block = pseudoRandom(2 ** w + 100, w);
    return [block, block];
  }));

/** A 200-byte random unit six times: sent twice, the second copy refers back into the first (distance 200, any window). */
const periodic = (): Buffer => Buffer.concat(Array(6).fill(pseudoRandom(200, 77)));

const SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072];
/** Messages per case: many small ones, fewer large (Autobahn sends more; this keeps the run short). */
const messageCount = (size: number) => (size <= 1024 ? 50 : size <= 16384 ? 20 : 8);

const PLAIN_OFFER = ['permessage-deflate'];
const NO_CLIENT_CONTEXT_OFFER = ['permessage-deflate; client_no_context_takeover'];

// ------------------------------------------------------------- 12 payloads

type Generator = (size: number, seed: number) => Buffer;

function compressionPayloads(): DeflateGroup[] {
  // Fragmented: compressed bytes in 4 frames; 4 sync-flushed pieces; 2 pieces of 2 frames each.
  const fragmented: Framing[] = [{ cut: quarters }, { pieces: 4 }, { pieces: 2, cut: halves }];
  const groups: Array<[string, string, number, Generator[], Framing[]]> = [
    ['12.1', 'text, compressible prose', TEXT, [prose], [{}]],
    ['12.2', 'binary, compressible records', BINARY, [records], [{}]],
    ['12.3', 'text, prose mixed with random ASCII', TEXT, [mixedText], [{}]],
    ['12.4', 'binary, random (incompressible)', BINARY, [pseudoRandom], [{}]],
    ['12.5', 'binary, random blocks with repeats', BINARY, [mixedBinary], [{}]],
    ['12.6', 'text (prose, mixed), compressed and fragmented', TEXT, [prose, mixedText], fragmented],
    ['12.7', 'binary (random, mixed), compressed and fragmented', BINARY, [pseudoRandom, mixedBinary], fragmented],
  ];
  return groups.map(([id, title, opcode, generators, framings]) => ({
    id,
    title,
    cases: SIZES.map((size, i) => {
      const count = messageCount(size);
      return {
        id: `${id}.${i + 1}`,
        title: `${count} messages of ${sizeName(size)} compressed, echoed exactly`,
        route: ROUTES.module,
        offers: PLAIN_OFFER,
        // Seeds repeat every 5 messages, so with context takeover later messages refer back to earlier ones.
        steps: (session) =>
          session.exchange(
            Array.from({ length: count }, (_, k) => [opcode, generators[k % generators.length](size, 1 + (k % 5)), framings[k % framings.length]] as const),
          ),
        outcome: OPEN,
      };
    }),
  }));
}

// ------------------------------------------------------- 12.8 edge cases

const HELLO = utf8('Hello');
/** RFC 7692 §7.2.3.1: "Hello" compressed, tail removed. */
const RFC_HELLO = bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00);
/** RFC 7692 §7.2.3.4: "Hello" in a block with BFINAL set, then an octet starting an empty stored block. */
const RFC_HELLO_BFINAL = bytes(0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00);
const compressedFrame = (opcode: number, payload: Buffer, fin = true): FrameSpec => ({ opcode, payload, fin, rsv: 4 });
const continuation = (payload: Buffer, fin = true, rsv = 0): FrameSpec => ({ opcode: CONTINUATION, payload, fin, rsv });

function edgeCases(): DeflateGroup {
  const short = utf8('Hello, κόσμε! permessage-deflate');
  const single = (id: string, title: string, steps: DeflateCase['steps'], offers = PLAIN_OFFER): DeflateCase => ({
    id,
    title,
    route: ROUTES.module,
    offers,
    steps,
    outcome: OPEN,
  });
  const cases: DeflateCase[] = [
    single('12.8.1', 'empty text as the single octet 0x00 (§7.2.3.6) echoed empty', (s) => [
      send([compressedFrame(TEXT, bytes(0x00))]),
      expectEchoes(s.echo(TEXT, Buffer.alloc(0))),
    ]),
    single('12.8.2', 'empty binary as 0x00 echoed empty', (s) => [
      send([compressedFrame(BINARY, bytes(0x00))]),
      expectEchoes(s.echo(BINARY, Buffer.alloc(0))),
    ]),
    single('12.8.3', 'empty messages between others, compressed with context, echoed (and compressed) in order', (s) =>
      s.exchange([
        [TEXT, HELLO],
        [TEXT, Buffer.alloc(0)],
        [BINARY, Buffer.alloc(0)],
        [TEXT, HELLO],
        [TEXT, Buffer.alloc(0)],
      ]),
    ),
    single('12.8.4', 'empty compressed message in 3 fragments (RSV1 on an empty first frame) echoed empty', (s) => [
      send([compressedFrame(TEXT, Buffer.alloc(0), false), continuation(Buffer.alloc(0), false), continuation(bytes(0x00))]),
      expectEchoes(s.echo(TEXT, Buffer.alloc(0))),
    ]),
    single('12.8.5', 'RFC 7692 §7.2.3.1 "Hello" (f2 48 cd c9 c9 07 00) echoed', (s) => [
      send([compressedFrame(TEXT, RFC_HELLO)]),
      expectEchoes(s.echo(TEXT, HELLO)),
    ]),
    single('12.8.6', 'RFC 7692 §7.2.3.1 "Hello" in 2 fragments (f2 48 cd | c9 c9 07 00) echoed', (s) => [
      send([compressedFrame(TEXT, RFC_HELLO.subarray(0, 3), false), continuation(RFC_HELLO.subarray(3))]),
      expectEchoes(s.echo(TEXT, HELLO)),
    ]),
    single('12.8.7', 'RFC 7692 §7.2.3.2 "Hello" twice, the second referring to the first (f2 00 11 00 00): both echoed', (s) => [
      send([compressedFrame(TEXT, RFC_HELLO), compressedFrame(TEXT, bytes(0xf2, 0x00, 0x11, 0x00, 0x00))]),
      expectEchoes(s.echo(TEXT, HELLO), s.echo(TEXT, HELLO)),
    ]),
    single('12.8.8', 'RFC 7692 §7.2.3.3 "Hello" in a stored (uncompressed) DEFLATE block echoed', (s) => [
      send([compressedFrame(TEXT, bytes(0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00))]),
      expectEchoes(s.echo(TEXT, HELLO)),
    ]),
    single('12.8.9', 'RFC 7692 §7.2.3.5 "Hello" in two DEFLATE blocks echoed', (s) => [
      send([compressedFrame(TEXT, bytes(0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00))]),
      expectEchoes(s.echo(TEXT, HELLO)),
    ]),
    single(
      '12.8.10',
      'RFC 7692 §7.2.3.4 "Hello" in a block with BFINAL set, twice, under client_no_context_takeover: both echoed',
      (s) => [send([compressedFrame(TEXT, RFC_HELLO_BFINAL), compressedFrame(TEXT, RFC_HELLO_BFINAL)]), expectEchoes(s.echo(TEXT, HELLO), s.echo(TEXT, HELLO))],
      NO_CLIENT_CONTEXT_OFFER,
    ),
    single('12.8.11', 'RFC 7692 §7.2.3.4 "Hello" with BFINAL set, then §7.2.3.1 "Hello" (no back-references), with context takeover: both echoed', (s) => [
      send([compressedFrame(TEXT, RFC_HELLO_BFINAL), compressedFrame(TEXT, RFC_HELLO)]),
      expectEchoes(s.echo(TEXT, HELLO), s.echo(TEXT, HELLO)),
    ]),
    single('12.8.12', 'short text compressed, one fragment per compressed octet, echoed', (s) =>
      s.exchange([[TEXT, short, { cut: everyOctet }]]),
    ),
    single(
      '12.8.13',
      'short text compressed, split into 2 fragments at every octet of its compressed form (one message per cut), echoed',
      (s) => {
        // No context takeover: every copy compresses to the same bytes, so the cuts cover all of them.
        const length = s.frames(TEXT, short)[0].payload!.length;
        return s.exchange(Array.from({ length: length + 1 }, (_, at) => [TEXT, short, { cut: () => [at] }] as const));
      },
      NO_CLIENT_CONTEXT_OFFER,
    ),
    single('12.8.14', 'ping between the fragments of a compressed text: pong (no RSV1), then the message', (s) => {
      const message = prose(300, 3);
      const [first, second] = s.frames(TEXT, message, { cut: halves });
      return [send([first, { opcode: PING, payload: utf8('between') }, second]), expectEchoes({ opcode: PONG, payload: utf8('between') }, s.echo(TEXT, message))];
    }),
    single('12.8.15', 'uncompressed message between compressed ones (not part of the LZ77 context) echoed', (s) => {
      const a = prose(2000, 4);
      return s.exchange([
        [TEXT, a],
        [TEXT, prose(2000, 5), { plain: true }],
        [BINARY, records(3000, 2), { plain: true, pieces: 3 }],
        [TEXT, a],
      ]);
    }),
    single('12.8.16', 'compressed binary that is not UTF-8 is not checked: echoed', (s) => s.exchange([[BINARY, bytes(0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80)]])),
    single('12.8.17', 'UTF-8 character split between two sync-flushed compressed fragments echoed', (s) =>
      s.exchange([[TEXT, utf8('κόσμε'), { pieces: 2 }]]),
    ),
    single('12.8.18', '1000 small compressed texts in one write echoed in order', (s) =>
      s.exchange(Array.from({ length: 1000 }, (_, i) => [TEXT, utf8(`message ${i}`)] as const)),
    ),
    single('12.8.19', '1 MiB text compressed and cut into 16 KiB frames echoed', (s) =>
      s.exchange([[TEXT, utf8Text(1024 * 1024), { cut: (length) => Array.from({ length: Math.floor(length / 16384) }, (_, i) => (i + 1) * 16384) }]]),
    ),
  ];
  return { id: '12.8', title: 'compressed message edge cases and RFC 7692 examples', cases };
}

// -------------------------------------------------------- 12.9 failures

function failures(): DeflateGroup {
  const failing = (id: string, title: string, code: number, steps: DeflateCase['steps']): DeflateCase => ({
    id,
    title,
    route: ROUTES.module,
    offers: PLAIN_OFFER,
    steps,
    outcome: fails(code),
  });
  const kosme = utf8('κόσμε');
  const cases: DeflateCase[] = [
    failing('12.9.1', 'compressed text inflating to invalid UTF-8 (encoded surrogate) fails with 1007', INVALID_PAYLOAD, (s) => [
      send(s.frames(TEXT, Buffer.concat([kosme, bytes(0xed, 0xa0, 0x80), utf8('edited')]))),
    ]),
    failing('12.9.2', 'compressed text in 2 sync-flushed fragments, the second inflating to 0xFF, fails with 1007', INVALID_PAYLOAD, (s) => [
      send(s.frames(TEXT, Buffer.concat([kosme, utf8('ab'), bytes(0xff), utf8('cdefghijklm')]), { pieces: 2 })),
    ]),
    failing('12.9.3', 'compressed text inflating to a truncated character fails with 1007', INVALID_PAYLOAD, (s) => [
      send(s.frames(TEXT, kosme.subarray(0, 7))),
    ]),
    failing('12.9.4', 'valid compressed text echoed, then one inflating to invalid UTF-8 fails with 1007', INVALID_PAYLOAD, (s) => [
      ...s.exchange([[TEXT, kosme]]),
      send(s.frames(TEXT, bytes(0xce, 0xba, 0xff))),
    ]),
    failing('12.9.5', 'data zlib cannot inflate (block type 11) fails with 1007', INVALID_PAYLOAD, () => [
      send([compressedFrame(BINARY, bytes(0xff, 0xff, 0xff, 0xff))]),
    ]),
    failing('12.9.6', 'RSV1 on a continuation of a compressed message fails with 1002 (§6.1)', PROTOCOL_ERROR, (s) => {
      const [first, second] = s.frames(TEXT, prose(200, 6), { cut: halves });
      return [send([first, { ...second, rsv: 4 }])];
    }),
    failing('12.9.7', 'RSV1 on a continuation of an uncompressed message fails with 1002', PROTOCOL_ERROR, () => [
      send([{ opcode: TEXT, payload: utf8('frag'), fin: false }, continuation(RFC_HELLO, true, 4)]),
    ]),
    failing('12.9.8', 'ping with RSV1 fails with 1002, no pong (§6.1)', PROTOCOL_ERROR, () => [
      send([{ opcode: PING, payload: utf8('ping'), rsv: 4 }]),
    ]),
    failing('12.9.9', 'close with RSV1 fails with 1002', PROTOCOL_ERROR, () => [
      send([{ opcode: CLOSE, payload: bytes(0x03, 0xe8), rsv: 4 }]),
    ]),
    failing('12.9.10', 'compressed text with RSV1 and RSV2 (RSV2 not negotiated) fails with 1002', PROTOCOL_ERROR, () => [
      send([{ opcode: TEXT, payload: RFC_HELLO, rsv: 6 }]),
    ]),
  ];
  return { id: '12.9', title: 'compressed frames that must fail the connection', cases };
}

// ------------------------------------------------------------ 13 parameters

const offer = (...parameters: string[]) => ['permessage-deflate', ...parameters].join('; ');

/** Offers after Autobahn 13.1-13.7, widened to every window size and a few combinations; one or more header lines each. */
const OFFERS: string[][] = [
  [offer()],
  [offer('client_no_context_takeover')],
  [offer('server_no_context_takeover')],
  [offer('client_no_context_takeover', 'server_no_context_takeover')],
  [offer('client_max_window_bits')],
  ...[8, 9, 10, 11, 12, 13, 14, 15].map((n) => [offer(`client_max_window_bits=${n}`)]),
  ...[9, 10, 11, 12, 13, 14, 15].map((n) => [offer(`server_max_window_bits=${n}`)]),
  [`${offer('server_max_window_bits=8')}, ${offer()}`],
  [offer('server_max_window_bits="10"')],
  [offer('client_max_window_bits=8', 'client_no_context_takeover')],
  [offer('client_max_window_bits=15', 'client_no_context_takeover')],
  [offer('server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits=9', 'client_max_window_bits=9')],
  [offer('server_max_window_bits=12', 'client_max_window_bits=10')],
  [[offer('client_no_context_takeover', 'client_max_window_bits=8'), offer('client_no_context_takeover'), offer()].join(', ')],
  [`${offer('server_max_window_bits=10')}, ${offer('client_max_window_bits')}`],
  [`${offer('x_unknown=1')}, ${offer('server_no_context_takeover')}`],
  [`x-webkit-deflate-frame, ${offer('client_no_context_takeover')}`],
  ['x-unknown-extension; a=1', offer('client_max_window_bits=11')],
];

/** Each message twice in a row: the second copy is where context takeover (or its absence) shows. */
function parameterMessages(): Array<[number, Buffer]> {
  const once: Array<[number, Buffer]> = [
    [BINARY, periodic()],
    [TEXT, prose(16, 8)],
    [TEXT, mixedText(4096, 9)],
    [BINARY, windowProbe()],
  ];
  return once.flatMap((message) => [message, message]);
}

function parameters(): DeflateGroup[] {
  const routes = [ROUTES.module, ROUTES.defaults, ROUTES.serverLimited, ROUTES.clientLimited];
  const groups: DeflateGroup[] = routes.map((route, r) => ({
    id: `13.${r + 1}`,
    title: `offers against ${route.title}`,
    cases: OFFERS.map((offers, k) => ({
      id: `13.${r + 1}.${k + 1}`,
      title: `${offers.map((line) => `"${line}"`).join(' + ')}: answer per RFC 7692, messages echoed`,
      route,
      offers,
      steps: (session) => session.exchange(parameterMessages()),
      outcome: OPEN,
    })),
  }));

  // Offers a server must decline (§5): the session is uncompressed and RSV1 is a protocol error.
  const invalid = [
    offer('server_max_window_bits'),
    offer('server_max_window_bits=7'),
    offer('server_max_window_bits=16'),
    offer('server_max_window_bits=08'),
    offer('client_max_window_bits=7'),
    offer('client_max_window_bits=16'),
    offer('server_no_context_takeover=1'),
    offer('client_no_context_takeover; client_no_context_takeover'),
    offer('server_max_window_bits=10; server_max_window_bits=11'),
    offer('x_unknown'),
  ];
  const declined = (route: DeflateRoute, offers: string[], k: number): DeflateCase => ({
    id: `13.5.${k + 1}`,
    title: `"${offers.join('" + "')}" on ${route.title} declined: plain echo, then RSV1 fails with 1002`,
    route,
    offers,
    steps: (s) => [...s.exchange([[TEXT, HELLO]]), send([compressedFrame(TEXT, RFC_HELLO)])],
    outcome: fails(PROTOCOL_ERROR),
  });
  const declines: Array<[DeflateRoute, string[]]> = [...invalid.map((line): [DeflateRoute, string[]] => [ROUTES.module, [line]]), [ROUTES.off, [offer()]], [ROUTES.clientLimited, [offer()]]];
  groups.push({ id: '13.5', title: 'offers that must be declined', cases: declines.map(([route, offers], k) => declined(route, offers, k)) });
  return groups;
}

export const deflateGroups: DeflateGroup[] = [...compressionPayloads(), edgeCases(), failures(), ...parameters()];
