/**
 * The conformance case table, after the Autobahn|Testsuite fuzzingclient
 * groups. Each case is what a client puts on the wire and what RFC 6455 says
 * an echo server must answer. Expected values are worked out here from the
 * RFC and from the UTF-8 definition (RFC 3629), never from the library.
 */
import { encodeFrame, type FrameSpec } from '../support/raw-client.js';

export const CONTINUATION = 0x0;
export const TEXT = 0x1;
export const BINARY = 0x2;
export const CLOSE = 0x8;
export const PING = 0x9;
export const PONG = 0xa;

/** A frame to encode, or bytes written exactly as given. */
export type Wire = FrameSpec | Buffer;

/** How the bytes of one send step are cut into TCP writes. */
export type Chop = 'bulk' | 'octet' | number;

/** A whole message (fragments joined) or a control frame the server must send. */
export interface Expected {
  opcode: number;
  payload: Buffer;
}

export type Step = { send: Wire[]; chop?: Chop } | { expect: Expected[] };

export type Outcome =
  /** The connection must still be usable: our Close 1000 is answered with 1000 and nothing else comes first. */
  | { kind: 'open' }
  /** The server must send this Close code next (failing, or replying to our Close), then end TCP. */
  | { kind: 'close'; code: number; reason?: string };

export interface ConformanceCase {
  id: string;
  title: string;
  steps: Step[];
  outcome: Outcome;
}

export interface CaseGroup {
  id: string;
  title: string;
  cases: ConformanceCase[];
}

// Close codes (RFC 6455 §7.4.1).
const NORMAL = 1000;
const PROTOCOL_ERROR = 1002;
const INVALID_PAYLOAD = 1007;
const TOO_BIG = 1009;

const OPEN: Outcome = { kind: 'open' };
const fails = (code: number): Outcome => ({ kind: 'close', code });

// ---------------------------------------------------------------- builders

const bytes = (...values: number[]) => Buffer.from(values);
const utf8 = (text: string) => Buffer.from(text, 'utf8');
const asBuffer = (payload: Buffer | string) => (typeof payload === 'string' ? utf8(payload) : payload);

const text = (payload: Buffer | string, fin = true): FrameSpec => ({ opcode: TEXT, payload: asBuffer(payload), fin });
const binary = (payload: Buffer | string, fin = true): FrameSpec => ({ opcode: BINARY, payload: asBuffer(payload), fin });
const cont = (payload: Buffer | string, fin = true): FrameSpec => ({ opcode: CONTINUATION, payload: asBuffer(payload), fin });
const ping = (payload: Buffer | string = Buffer.alloc(0), fin = true): FrameSpec => ({ opcode: PING, payload: asBuffer(payload), fin });
const pong = (payload: Buffer | string = Buffer.alloc(0)): FrameSpec => ({ opcode: PONG, payload: asBuffer(payload) });
const close = (payload: Buffer = Buffer.alloc(0)): FrameSpec => ({ opcode: CLOSE, payload });

/** A Close payload: 2-byte code, then the reason bytes. */
export function closeBody(code: number, reason: Buffer | string = ''): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, asBuffer(reason)]);
}

const msg = (opcode: number, payload: Buffer | string): Expected => ({ opcode, payload: asBuffer(payload) });
const textMsg = (payload: Buffer | string) => msg(TEXT, payload);
const binaryMsg = (payload: Buffer | string) => msg(BINARY, payload);
const pongMsg = (payload: Buffer | string = Buffer.alloc(0)) => msg(PONG, payload);

const send = (wire: Wire[], chop: Chop = 'bulk'): Step => ({ send: wire, chop });
const expect = (...messages: Expected[]): Step => ({ expect: messages });

/** The message split into fragments of `size` bytes (at least one fragment). */
function fragments(opcode: number, payload: Buffer, size: number): FrameSpec[] {
  const frames: FrameSpec[] = [];
  for (let offset = 0; offset < payload.length || frames.length === 0; offset += size) {
    const end = Math.min(offset + size, payload.length);
    const first = frames.length === 0;
    frames.push({ opcode: first ? opcode : CONTINUATION, payload: payload.subarray(offset, end), fin: end === payload.length });
  }
  return frames;
}

/** The message split in two at byte `at`. */
const splitAt = (opcode: number, payload: Buffer, at: number): FrameSpec[] => [
  { opcode, payload: payload.subarray(0, at), fin: false },
  cont(payload.subarray(at)),
];

/** One frame's wire bytes cut into TCP chops: the header with the payload up to the first cut, then up to each next cut, then the rest. */
function frameChops(frame: FrameSpec, ...payloadCuts: number[]): Buffer[] {
  const wire = encodeFrame(frame);
  const header = wire.length - asBuffer(frame.payload ?? '').length;
  const ends = [...payloadCuts.map((cut) => header + cut), wire.length];
  return ends.map((end, i) => wire.subarray(i === 0 ? 0 : ends[i - 1], end));
}

/** A frame header with an explicit 7-bit length code and extended length, plus a mask key and masked payload. */
export function handFrame(first: number, lengthCode: number, extended: Buffer, payload: Buffer): Buffer {
  const key = bytes(0x37, 0xfa, 0x21, 0x3d);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i % 4];
  return Buffer.concat([bytes(first, 0x80 | lengthCode), extended, key, masked]);
}

const u64 = (value: bigint) => {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(value);
  return out;
};
const u16 = (value: number) => {
  const out = Buffer.alloc(2);
  out.writeUInt16BE(value);
  return out;
};

/** Deterministic pseudo-random bytes (xorshift32), so a failure replays the same. */
export function pseudoRandom(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Valid UTF-8 of exactly `length` bytes, with 2-, 3- and 4-byte characters so fragment cuts fall inside them. */
export function utf8Text(length: number): Buffer {
  const unit = utf8('Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 ✓ ');
  const out = Buffer.alloc(length, 0x2a);
  let offset = 0;
  while (offset + unit.length <= length) offset += unit.copy(out, offset);
  return out;
}

const kib = (n: number) => n * 1024;
export const sizeName = (n: number) => (n >= kib(1024) ? `${n / kib(1024)} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`);

// ------------------------------------------------------------- 1 framing

function framing(): CaseGroup {
  const cases: ConformanceCase[] = [];
  const lengths = [0, 125, 126, 127, 128, 65535, 65536];
  for (const [sub, opcode, name] of [[1, TEXT, 'text'], [2, BINARY, 'binary']] as const) {
    lengths.forEach((length, i) => {
      const payload = opcode === TEXT ? Buffer.alloc(length, 0x2a) : Buffer.alloc(length, 0xfe);
      cases.push({
        id: `1.${sub}.${i + 1}`,
        title: `${name} payload of ${length} bytes echoed`,
        steps: [send([{ opcode, payload }]), expect(msg(opcode, payload))],
        outcome: OPEN,
      });
    });
    const payload = opcode === TEXT ? Buffer.alloc(65536, 0x2a) : Buffer.alloc(65536, 0xfe);
    cases.push({
      id: `1.${sub}.8`,
      title: `${name} payload of 65536 bytes written in 997-byte chops echoed`,
      steps: [send([{ opcode, payload }], 997), expect(msg(opcode, payload))],
      outcome: OPEN,
    });
  }

  // Length encodings and the frame header's own rules.
  const small = utf8('Hello');
  const two00 = pseudoRandom(200, 7);
  cases.push(
    {
      id: '1.3.1',
      title: '5-byte text with a 64-bit length (non-minimal encoding) accepted',
      steps: [send([handFrame(0x81, 127, u64(5n), small)]), expect(textMsg(small))],
      outcome: OPEN,
    },
    {
      id: '1.3.2',
      title: '5-byte text with a 16-bit length (non-minimal encoding) accepted',
      steps: [send([handFrame(0x81, 126, u16(5), small)]), expect(textMsg(small))],
      outcome: OPEN,
    },
    {
      id: '1.3.3',
      title: '200-byte binary with a 64-bit length accepted',
      steps: [send([handFrame(0x82, 127, u64(200n), two00)]), expect(binaryMsg(two00))],
      outcome: OPEN,
    },
    {
      id: '1.3.4',
      title: 'empty text with a 64-bit length accepted',
      steps: [send([handFrame(0x81, 127, u64(0n), Buffer.alloc(0))]), expect(textMsg(''))],
      outcome: OPEN,
    },
    {
      id: '1.3.5',
      title: '64-bit length with the most significant bit set fails with 1002',
      steps: [send([handFrame(0x82, 127, u64(0x8000000000000005n), small)])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '1.3.6',
      title: 'declared length 2^63 (MSB only) fails with 1002',
      steps: [send([handFrame(0x82, 127, u64(1n << 63n), Buffer.alloc(0))])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      // Only the header is sent: the answer must not wait for (or allocate) the payload.
      id: '1.3.7',
      title: 'declared length 2^62 fails with 1009 from the header alone',
      steps: [send([handFrame(0x82, 127, u64(1n << 62n), Buffer.alloc(0))])],
      outcome: fails(TOO_BIG),
    },
    {
      id: '1.3.8',
      title: 'declared length 2^53 + 1 fails with 1009 from the header alone',
      steps: [send([handFrame(0x81, 127, u64((1n << 53n) + 1n), Buffer.alloc(0))])],
      outcome: fails(TOO_BIG),
    },
    {
      id: '1.3.9',
      title: 'declared length just above the default maxFrameSize (64 MiB + 1) fails with 1009',
      steps: [send([handFrame(0x82, 127, u64(64n * 1024n * 1024n + 1n), Buffer.alloc(0))])],
      outcome: fails(TOO_BIG),
    },
    {
      id: '1.3.10',
      title: 'unmasked client frame fails with 1002 (RFC 6455 §5.1)',
      steps: [send([{ opcode: TEXT, payload: small, mask: false }])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '1.3.11',
      title: 'text echoed, then an unmasked frame fails with 1002',
      steps: [send([text('first')]), expect(textMsg('first')), send([{ opcode: BINARY, payload: small, mask: false }])],
      outcome: fails(PROTOCOL_ERROR),
    },
  );
  return { id: '1', title: 'framing', cases };
}

// ------------------------------------------------------------ 2 ping/pong

function pingPong(): CaseGroup {
  const hello = utf8('Hello, world!');
  const binaryPayload = bytes(0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff);
  const max = Buffer.alloc(125, 0xfe);
  const tenPings = Array.from({ length: 10 }, (_, i) => utf8(`payload-${i}`));
  const cases: ConformanceCase[] = [
    { id: '2.1', title: 'ping without payload answered by an empty pong', steps: [send([ping()]), expect(pongMsg())], outcome: OPEN },
    { id: '2.2', title: 'ping with a text payload answered by the same pong', steps: [send([ping(hello)]), expect(pongMsg(hello))], outcome: OPEN },
    {
      id: '2.3',
      title: 'ping with a binary payload answered by the same pong',
      steps: [send([ping(binaryPayload)]), expect(pongMsg(binaryPayload))],
      outcome: OPEN,
    },
    { id: '2.4', title: 'ping with a 125-byte payload answered by the same pong', steps: [send([ping(max)]), expect(pongMsg(max))], outcome: OPEN },
    { id: '2.5', title: 'ping with a 126-byte payload fails with 1002', steps: [send([ping(Buffer.alloc(126, 0xfe))])], outcome: fails(PROTOCOL_ERROR) },
    {
      id: '2.6',
      title: 'ping with a 125-byte payload written octet by octet answered',
      steps: [send([ping(max)], 'octet'), expect(pongMsg(max))],
      outcome: OPEN,
    },
    { id: '2.7', title: 'unsolicited empty pong ignored', steps: [send([pong()])], outcome: OPEN },
    { id: '2.8', title: 'unsolicited pong with payload ignored', steps: [send([pong('unsolicited pong payload')])], outcome: OPEN },
    {
      id: '2.9',
      title: 'unsolicited pong, then ping: only the ping is answered',
      steps: [send([pong('unsolicited pong payload'), ping('ping payload')]), expect(pongMsg('ping payload'))],
      outcome: OPEN,
    },
    {
      id: '2.10',
      title: '10 pings answered by 10 pongs in order',
      steps: [send(tenPings.map((p) => ping(p))), expect(...tenPings.map((p) => pongMsg(p)))],
      outcome: OPEN,
    },
    {
      id: '2.11',
      title: '10 pings written octet by octet answered by 10 pongs in order',
      steps: [send(tenPings.map((p) => ping(p)), 'octet'), expect(...tenPings.map((p) => pongMsg(p)))],
      outcome: OPEN,
    },
    {
      id: '2.12',
      title: 'unsolicited pong, then a text: the text is still echoed',
      steps: [send([pong('x'), text('after pong')]), expect(textMsg('after pong'))],
      outcome: OPEN,
    },
    { id: '2.13', title: 'fragmented ping (fin=0) fails with 1002', steps: [send([ping('frag', false)])], outcome: fails(PROTOCOL_ERROR) },
    {
      id: '2.14',
      title: 'fragmented ping (fin=0) then its continuation fails with 1002, no pong',
      steps: [send([ping('frag', false), cont('ment')])],
      outcome: fails(PROTOCOL_ERROR),
    },
  ];
  return { id: '2', title: 'ping/pong', cases };
}

// ------------------------------------------------------ 3 reserved bits

function reservedBits(): CaseGroup {
  const hello = 'Hello, world!';
  const cases: ConformanceCase[] = [
    { id: '3.1', title: 'text with RSV=1 fails with 1002', steps: [send([{ ...text(hello), rsv: 1 }])], outcome: fails(PROTOCOL_ERROR) },
    {
      // Autobahn 3.2: the message before the bad frame is echoed first; the ping after it is not answered.
      id: '3.2',
      title: 'text, text with RSV=2, ping in one write: echo, then 1002, no pong',
      steps: [send([text(hello), { ...text(hello), rsv: 2 }, ping()]), expect(textMsg(hello))],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '3.3',
      title: 'text echoed, then text with RSV=3 and ping: 1002, no pong',
      steps: [send([text(hello)]), expect(textMsg(hello)), send([{ ...text(hello), rsv: 3 }, ping()])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '3.4',
      title: 'text, text with RSV=4, ping written octet by octet: echo, then 1002, no pong',
      steps: [send([text(hello), { ...text(hello), rsv: 4 }, ping()], 'octet'), expect(textMsg(hello))],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '3.5',
      title: 'binary with RSV=5 fails with 1002',
      steps: [send([{ ...binary(bytes(0, 1, 2, 0xff)), rsv: 5 }])],
      outcome: fails(PROTOCOL_ERROR),
    },
    { id: '3.6', title: 'ping with RSV=6 fails with 1002, no pong', steps: [send([{ ...ping(hello), rsv: 6 }])], outcome: fails(PROTOCOL_ERROR) },
    {
      id: '3.7',
      title: 'close with RSV=7 fails with 1002',
      steps: [send([{ ...close(closeBody(NORMAL)), rsv: 7 }])],
      outcome: fails(PROTOCOL_ERROR),
    },
  ];
  for (let rsv = 1; rsv <= 7; rsv++) {
    cases.push({
      id: `3.8.${rsv}`,
      title: `text, then text with RSV=${rsv}: echo, then 1002`,
      steps: [send([text('before'), { ...text('bad'), rsv }]), expect(textMsg('before'))],
      outcome: fails(PROTOCOL_ERROR),
    });
  }
  for (let rsv = 1; rsv <= 7; rsv++) {
    cases.push({
      id: `3.9.${rsv}`,
      title: `ping with RSV=${rsv} fails with 1002, no pong`,
      steps: [send([{ ...ping('ping'), rsv }])],
      outcome: fails(PROTOCOL_ERROR),
    });
  }
  for (let rsv = 1; rsv <= 7; rsv++) {
    cases.push({
      id: `3.10.${rsv}`,
      title: `continuation with RSV=${rsv} in a fragmented text fails with 1002`,
      steps: [send([text('frag', false), { ...cont('ment'), rsv }])],
      outcome: fails(PROTOCOL_ERROR),
    });
  }
  return { id: '3', title: 'reserved bits', cases };
}

// ------------------------------------------------------------- 4 opcodes

function opcodes(): CaseGroup {
  const cases: ConformanceCase[] = [];
  const groups = [
    [1, [3, 4, 5, 6, 7], 'non-control'],
    [2, [11, 12, 13, 14, 15], 'control'],
  ] as const;
  for (const [sub, codes, kind] of groups) {
    codes.forEach((opcode, i) => {
      cases.push({
        id: `4.${sub}.${i + 1}`,
        title: `reserved ${kind} opcode ${opcode} fails with 1002`,
        steps: [send([{ opcode }])],
        outcome: fails(PROTOCOL_ERROR),
      });
    });
    codes.forEach((opcode, i) => {
      cases.push({
        id: `4.${sub}.${i + 6}`,
        title: `text echoed, then reserved ${kind} opcode ${opcode} with payload and a ping: 1002, no pong`,
        steps: [send([text('Hello, world!')]), expect(textMsg('Hello, world!')), send([{ opcode, payload: utf8('reserved') }, ping()])],
        outcome: fails(PROTOCOL_ERROR),
      });
    });
    codes.forEach((opcode, i) => {
      cases.push({
        id: `4.${sub}.${i + 11}`,
        title: `text, reserved ${kind} opcode ${opcode}, ping in one write: echo, then 1002, no pong`,
        steps: [send([text('Hello, world!'), { opcode, payload: utf8('reserved') }, ping()]), expect(textMsg('Hello, world!'))],
        outcome: fails(PROTOCOL_ERROR),
      });
    });
  }
  return { id: '4', title: 'opcodes', cases };
}

// ------------------------------------------------------- 5 fragmentation

function fragmentation(): CaseGroup {
  const oneByteFragments = Buffer.from(pseudoRandom(1000, 5).map((b) => 0x20 + (b % 0x5f)));
  const cases: ConformanceCase[] = [
    { id: '5.1', title: 'ping in 2 fragments fails with 1002', steps: [send([ping('frag', false), cont('ment')])], outcome: fails(PROTOCOL_ERROR) },
    { id: '5.2', title: 'pong in 2 fragments fails with 1002', steps: [send([{ opcode: PONG, payload: utf8('frag'), fin: false }, cont('ment')])], outcome: fails(PROTOCOL_ERROR) },
    {
      id: '5.3',
      title: 'text in 2 fragments echoed as one message',
      steps: [send([text('frag', false), cont('ment')]), expect(textMsg('fragment'))],
      outcome: OPEN,
    },
    {
      id: '5.4',
      title: 'text in 2 fragments written octet by octet echoed as one message',
      steps: [send([text('frag', false), cont('ment')], 'octet'), expect(textMsg('fragment'))],
      outcome: OPEN,
    },
    {
      id: '5.5',
      title: 'binary in 2 fragments echoed as one message',
      steps: [send([binary(bytes(1, 2), false), cont(bytes(3, 0xff))]), expect(binaryMsg(bytes(1, 2, 3, 0xff)))],
      outcome: OPEN,
    },
    {
      id: '5.6',
      title: 'text in 2 fragments with a ping between: pong, then the message',
      steps: [send([text('frag', false), ping('pongme!'), cont('ment')]), expect(pongMsg('pongme!'), textMsg('fragment'))],
      outcome: OPEN,
    },
    {
      id: '5.7',
      title: 'text in 2 fragments with a ping between, octet by octet: pong, then the message',
      steps: [send([text('frag', false), ping('pongme!'), cont('ment')], 'octet'), expect(pongMsg('pongme!'), textMsg('fragment'))],
      outcome: OPEN,
    },
    {
      id: '5.8',
      title: 'text in 5 fragments with 2 pings interleaved: 2 pongs, then the message',
      steps: [
        send([
          text('fragment1', false),
          cont('fragment2', false),
          ping('pongme 1!'),
          cont('fragment3', false),
          cont('fragment4', false),
          ping('pongme 2!'),
          cont('fragment5'),
        ]),
        expect(pongMsg('pongme 1!'), pongMsg('pongme 2!'), textMsg('fragment1fragment2fragment3fragment4fragment5')),
      ],
      outcome: OPEN,
    },
    {
      id: '5.9',
      title: 'continuation (fin=1) with no message started fails with 1002, then text not echoed',
      steps: [send([cont('non-continuation payload'), text('Hello, world!')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.10',
      title: 'continuation (fin=1) with no message started, octet by octet: 1002',
      steps: [send([cont('non-continuation payload'), text('Hello, world!')], 'octet')],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.11',
      title: 'continuation (fin=0) with no message started fails with 1002',
      steps: [send([cont('non-continuation payload', false), text('Hello, world!')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.12',
      title: 'continuation as the first frame of the connection, then continuation fin=1: 1002',
      steps: [send([cont('fragment1', false), cont('fragment2')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.13',
      title: 'whole message echoed, then a continuation (fin=1) with nothing open: 1002',
      steps: [send([text('fragment1', false), cont('fragment2')]), expect(textMsg('fragment1fragment2')), send([cont('fragment3')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.14',
      title: 'close in 2 fragments fails with 1002',
      steps: [send([{ opcode: CLOSE, payload: closeBody(NORMAL), fin: false }, cont('')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.15',
      title: 'new text start before the fragmented text ended fails with 1002',
      steps: [send([text('fragment1', false), text('fragment2')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.16',
      title: 'new binary start (fin=0) before the fragmented text ended fails with 1002',
      steps: [send([text('fragment1', false), binary('fragment2', false), cont('fragment3')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.17',
      title: 'ping inside a fragmented text, then a new text start: pong, then 1002',
      steps: [send([text('fragment1', false), ping('p')]), expect(pongMsg('p')), send([text('fragment2')])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '5.18',
      title: '1000 one-byte fragments echoed as one message',
      steps: [send(fragments(TEXT, oneByteFragments, 1)), expect(textMsg(oneByteFragments))],
      outcome: OPEN,
    },
    {
      id: '5.19',
      title: 'text in 3 empty fragments echoed as one empty message',
      steps: [send([text('', false), cont('', false), cont('')]), expect(textMsg(''))],
      outcome: OPEN,
    },
    {
      id: '5.20',
      title: 'binary: empty first fragment, then data, then empty last fragment',
      steps: [send([binary('', false), cont(bytes(9, 8, 7), false), cont('')]), expect(binaryMsg(bytes(9, 8, 7)))],
      outcome: OPEN,
    },
    {
      id: '5.21',
      title: 'two fragmented messages back to back echoed as two messages',
      steps: [
        send([text('a', false), cont('b'), binary(bytes(1), false), cont(bytes(2))]),
        expect(textMsg('ab'), binaryMsg(bytes(1, 2))),
      ],
      outcome: OPEN,
    },
  ];
  return { id: '5', title: 'fragmentation', cases };
}

// ----------------------------------------------------------------- 6 UTF-8

/**
 * Scans bytes against the UTF-8 grammar of RFC 3629 §4 (no overlongs, no
 * surrogates, nothing above U+10FFFF), decided here and not by the library.
 * `badAt` is the first byte that no continuation could make valid: where a
 * fail-fast validator must stop. `complete` says the bytes are well-formed
 * and end on a character boundary.
 */
export function scanUtf8(data: Buffer): { badAt: number | undefined; complete: boolean } {
  let i = 0;
  while (i < data.length) {
    const b = data[i];
    let need: number;
    let low = 0x80;
    let high = 0xbf;
    if (b <= 0x7f) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b === 0xe0) [need, low] = [2, 0xa0];
    else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) need = 2;
    else if (b === 0xed) [need, high] = [2, 0x9f];
    else if (b === 0xf0) [need, low] = [3, 0x90];
    else if (b >= 0xf1 && b <= 0xf3) need = 3;
    else if (b === 0xf4) [need, high] = [3, 0x8f];
    else return { badAt: i, complete: false };
    for (let k = 1; k <= need; k++) {
      const next = data[i + k];
      if (next === undefined) return { badAt: undefined, complete: false };
      if (next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return { badAt: i + k, complete: false };
    }
    i += need + 1;
  }
  return { badAt: undefined, complete: true };
}

export const wellFormedUtf8 = (data: Buffer): boolean => scanUtf8(data).complete;

export interface Utf8Sample {
  id: string;
  name: string;
  data: Buffer;
}

const hex = (...values: number[]) => bytes(...values);

/** "κόσμε" as Markus Kuhn's test spells it: ό is U+1F79 (3 bytes), not U+03CC. */
const KOSME = hex(0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5);

/** Markus Kuhn's UTF-8 decoder stress test, as Autobahn 6.x plays it. */
export function utf8Samples(): Utf8Sample[] {
  const samples: Utf8Sample[] = [];
  const add = (id: string, name: string, data: Buffer) => samples.push({ id, name, data });
  add('6.2', '"Hello-µ@ßöäüàá-UTF-8!!"', utf8('Hello-µ@ßöäüàá-UTF-8!!'));
  add('6.3', '"κόσμε"', KOSME);
  add('6.5.1', 'ASCII "Hello, world!"', utf8('Hello, world!'));
  add('6.5.2', '4-byte characters "𝄞😀"', utf8('𝄞😀'));
  add('6.5.5', '"a𝄞b": a 4-byte character between ASCII', utf8('a𝄞b'));
  add('6.5.3', 'κόσμε with U+D800 encoded in the middle', Buffer.concat([KOSME, hex(0xed, 0xa0, 0x80), utf8('edited')]));
  add('6.5.4', 'κόσμε followed by U+110000', Buffer.concat([KOSME, hex(0xf4, 0x90, 0x80, 0x80)]));
  // First and last sequences of each length.
  add('6.7.1', 'U+0000', hex(0x00));
  add('6.7.2', 'U+0080', hex(0xc2, 0x80));
  add('6.7.3', 'U+0800', hex(0xe0, 0xa0, 0x80));
  add('6.7.4', 'U+10000', hex(0xf0, 0x90, 0x80, 0x80));
  add('6.8.1', 'first 5-byte sequence', hex(0xf8, 0x88, 0x80, 0x80, 0x80));
  add('6.8.2', 'first 6-byte sequence', hex(0xfc, 0x84, 0x80, 0x80, 0x80, 0x80));
  add('6.9.1', 'U+007F', hex(0x7f));
  add('6.9.2', 'U+07FF', hex(0xdf, 0xbf));
  add('6.9.3', 'U+FFFF', hex(0xef, 0xbf, 0xbf));
  add('6.9.4', 'U+1FFFFF (above U+10FFFF)', hex(0xf7, 0xbf, 0xbf, 0xbf));
  add('6.10.1', 'last 5-byte sequence', hex(0xfb, 0xbf, 0xbf, 0xbf, 0xbf));
  add('6.10.2', 'last 6-byte sequence', hex(0xfd, 0xbf, 0xbf, 0xbf, 0xbf, 0xbf));
  add('6.11.1', 'U+D7FF', hex(0xed, 0x9f, 0xbf));
  add('6.11.2', 'U+E000', hex(0xee, 0x80, 0x80));
  add('6.11.3', 'U+FFFD', hex(0xef, 0xbf, 0xbd));
  add('6.11.4', 'U+10FFFF', hex(0xf4, 0x8f, 0xbf, 0xbf));
  add('6.11.5', 'U+110000', hex(0xf4, 0x90, 0x80, 0x80));
  // Unexpected continuation bytes.
  add('6.12.1', 'lone continuation 0x80', hex(0x80));
  add('6.12.2', 'lone continuation 0xBF', hex(0xbf));
  add('6.12.3', 'continuations 0x80 0xBF', hex(0x80, 0xbf));
  add('6.12.4', 'continuations 0x80 0xBF 0x80', hex(0x80, 0xbf, 0x80));
  add('6.12.5', 'continuation after ASCII', hex(0x61, 0x80, 0x62));
  add('6.12.6', 'all 64 continuation bytes', Buffer.from(Array.from({ length: 64 }, (_, i) => 0x80 + i)));
  // Lonely start characters, each followed by a space.
  add('6.13.1', 'lonely 2-byte starts C0..DF', Buffer.from(Array.from({ length: 32 }, (_, i) => [0xc0 + i, 0x20]).flat()));
  add('6.13.2', 'lonely 3-byte starts E0..EF', Buffer.from(Array.from({ length: 16 }, (_, i) => [0xe0 + i, 0x20]).flat()));
  add('6.13.3', 'lonely 4-byte starts F0..F7', Buffer.from(Array.from({ length: 8 }, (_, i) => [0xf0 + i, 0x20]).flat()));
  add('6.13.4', 'lonely 5-byte starts F8..FB', Buffer.from(Array.from({ length: 4 }, (_, i) => [0xf8 + i, 0x20]).flat()));
  add('6.13.5', 'lonely 6-byte starts FC, FD', hex(0xfc, 0x20, 0xfd, 0x20));
  // Sequences with the last continuation byte missing.
  add('6.14.1', 'C0 (2-byte, truncated)', hex(0xc0));
  add('6.14.2', 'E0 80 (3-byte, truncated)', hex(0xe0, 0x80));
  add('6.14.3', 'F0 80 80 (4-byte, truncated)', hex(0xf0, 0x80, 0x80));
  add('6.14.4', 'DF (U+07FF truncated)', hex(0xdf));
  add('6.14.5', 'EF BF (U+FFFF truncated)', hex(0xef, 0xbf));
  add('6.14.6', 'F4 8F BF (U+10FFFF truncated)', hex(0xf4, 0x8f, 0xbf));
  add('6.14.7', 'κόσμε then a truncated 3-byte sequence', Buffer.concat([KOSME, hex(0xe1, 0xbd)]));
  add(
    '6.15.1',
    'concatenated truncated sequences',
    hex(0xc0, 0xe0, 0x80, 0xf0, 0x80, 0x80, 0xf8, 0x80, 0x80, 0x80, 0xfc, 0x80, 0x80, 0x80, 0x80, 0xdf, 0xef, 0xbf, 0xf7, 0xbf, 0xbf),
  );
  // Impossible bytes.
  add('6.16.1', 'FE', hex(0xfe));
  add('6.16.2', 'FF', hex(0xff));
  add('6.16.3', 'FE FE FF FF', hex(0xfe, 0xfe, 0xff, 0xff));
  // Overlong forms.
  add('6.17.1', 'overlong "/" C0 AF', hex(0xc0, 0xaf));
  add('6.17.2', 'overlong "/" E0 80 AF', hex(0xe0, 0x80, 0xaf));
  add('6.17.3', 'overlong "/" F0 80 80 AF', hex(0xf0, 0x80, 0x80, 0xaf));
  add('6.17.4', 'overlong "/" F8 80 80 80 AF', hex(0xf8, 0x80, 0x80, 0x80, 0xaf));
  add('6.17.5', 'overlong "/" FC 80 80 80 80 AF', hex(0xfc, 0x80, 0x80, 0x80, 0x80, 0xaf));
  add('6.18.1', 'maximum overlong C1 BF', hex(0xc1, 0xbf));
  add('6.18.2', 'maximum overlong E0 9F BF', hex(0xe0, 0x9f, 0xbf));
  add('6.18.3', 'maximum overlong F0 8F BF BF', hex(0xf0, 0x8f, 0xbf, 0xbf));
  add('6.19.1', 'overlong NUL C0 80', hex(0xc0, 0x80));
  add('6.19.2', 'overlong NUL E0 80 80', hex(0xe0, 0x80, 0x80));
  add('6.19.3', 'overlong NUL F0 80 80 80', hex(0xf0, 0x80, 0x80, 0x80));
  // UTF-16 surrogates encoded as UTF-8.
  const surrogates = [0xd800, 0xdb7f, 0xdb80, 0xdbff, 0xdc00, 0xdf80, 0xdfff];
  surrogates.forEach((cp, i) => add(`6.20.${i + 1}`, `single surrogate U+${cp.toString(16).toUpperCase()}`, encode3(cp)));
  const pairs = [
    [0xd800, 0xdc00],
    [0xd800, 0xdfff],
    [0xdb7f, 0xdc00],
    [0xdbff, 0xdfff],
  ];
  pairs.forEach(([hi, lo], i) =>
    add(`6.21.${i + 1}`, `surrogate pair U+${hex4(hi)} U+${hex4(lo)}`, Buffer.concat([encode3(hi), encode3(lo)])),
  );
  // Noncharacters are well-formed UTF-8 and must be accepted.
  add('6.22.1', 'noncharacter U+FFFE', hex(0xef, 0xbf, 0xbe));
  add('6.22.2', 'noncharacter U+FDD0', hex(0xef, 0xb7, 0x90));
  add('6.22.3', 'noncharacter U+1FFFE', hex(0xf0, 0x9f, 0xbf, 0xbe));
  add('6.22.4', 'noncharacter U+10FFFE', hex(0xf4, 0x8f, 0xbf, 0xbe));
  add('6.23.1', 'BOM U+FEFF', hex(0xef, 0xbb, 0xbf));
  return samples;
}

/** A 3-byte UTF-8-shaped encoding of a 16-bit value (surrogates included, which real UTF-8 forbids). */
function encode3(cp: number): Buffer {
  return hex(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}
const hex4 = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');

function utf8Group(): CaseGroup {
  const cases: ConformanceCase[] = [];
  const verdict = (data: Buffer) => (wellFormedUtf8(data) ? 'echoed' : 'fails with 1007');
  const outcomeOf = (data: Buffer): Outcome => (wellFormedUtf8(data) ? OPEN : fails(INVALID_PAYLOAD));
  const echoOf = (data: Buffer): Step[] => (wellFormedUtf8(data) ? [expect(textMsg(data))] : []);

  cases.push(
    { id: '6.1.1', title: 'empty text echoed', steps: [send([text('')]), expect(textMsg(''))], outcome: OPEN },
    {
      id: '6.1.2',
      title: 'empty text in 3 empty fragments echoed',
      steps: [send([text('', false), cont('', false), cont('')]), expect(textMsg(''))],
      outcome: OPEN,
    },
    {
      id: '6.1.3',
      title: 'text: empty fragment, "middle", empty fragment echoed as "middle"',
      steps: [send([text('', false), cont('middle', false), cont('')]), expect(textMsg('middle'))],
      outcome: OPEN,
    },
  );

  // Each sample as one frame, then one fragment per byte and split in two at every byte (inside characters
  // too). A sample with a byte no continuation can save is sent only up to that byte, without FIN: the 1007
  // must come from the first bad byte, not from the end of the message. Other samples are sent whole.
  for (const sample of utf8Samples()) {
    cases.push({
      id: `${sample.id}.a`,
      title: `${sample.name} in one frame ${verdict(sample.data)}`,
      steps: [send([text(sample.data)]), ...echoOf(sample.data)],
      outcome: outcomeOf(sample.data),
    });
    const { badAt } = scanUtf8(sample.data);
    const failsFast = badAt !== undefined;
    const sent = failsFast ? sample.data.subarray(0, badAt + 1) : sample.data;
    const streamed = (frames: FrameSpec[]) => (failsFast ? frames.map((frame) => ({ ...frame, fin: false })) : frames);
    const how = failsFast ? `up to its first bad byte (${badAt}), no FIN, fails with 1007` : verdict(sample.data);
    cases.push({
      id: `${sample.id}.b`,
      title: `${sample.name} in 1-byte fragments ${how}`,
      steps: [send(streamed(fragments(TEXT, sent, 1))), ...echoOf(sample.data)],
      outcome: outcomeOf(sample.data),
    });
    for (let at = 0; at <= sent.length; at++) {
      cases.push({
        id: `${sample.id}.split.${at}`,
        title: `${sample.name} split into 2 fragments at byte ${at} ${how}`,
        steps: [send(streamed(splitAt(TEXT, sent, at))), ...echoOf(sample.data)],
        outcome: outcomeOf(sample.data),
      });
    }
  }

  // Every byte prefix of κόσμε as a whole message: valid exactly at character boundaries.
  const kosme = KOSME;
  for (let length = 1; length <= kosme.length; length++) {
    const data = kosme.subarray(0, length);
    cases.push({
      id: `6.6.${length}`,
      title: `first ${length} bytes of "κόσμε" as a message ${verdict(data)}`,
      steps: [send([text(data)]), ...echoOf(data)],
      outcome: outcomeOf(data),
    });
  }

  // Fail fast: the error shows inside the first fragments; the rest of the message is never sent.
  const failFast: Array<[string, string, FrameSpec[]]> = [
    ['6.4.1', 'first fragment κόσμε + U+110000, rest never sent', [text(Buffer.concat([kosme, hex(0xf4, 0x90, 0x80, 0x80)]), false)]],
    ['6.4.2', 'first fragment with 0xFF, rest never sent', [text(hex(0x61, 0xff), false)]],
    ['6.4.3', 'first fragment with an encoded surrogate, rest never sent', [text(Buffer.concat([utf8('ab'), encode3(0xd800)]), false)]],
    ['6.4.4', 'first fragment with an overlong, rest never sent', [text(hex(0xc0, 0xaf, 0x61), false)]],
    ['6.4.5', 'first fragment starting with a lone continuation byte, rest never sent', [text(hex(0x80, 0x61), false)]],
    [
      '6.4.6',
      'valid first fragment ending in F4, second fragment 0x90 (above U+10FFFF), rest never sent',
      [text(Buffer.concat([kosme, hex(0xf4)]), false), cont(hex(0x90), false)],
    ],
    [
      '6.4.7',
      'valid first fragment ending in ED, second fragment 0xA0 (surrogate), rest never sent',
      [text(Buffer.concat([kosme, hex(0xed)]), false), cont(hex(0xa0, 0x80), false)],
    ],
    [
      '6.4.8',
      'first fragment ending inside a sequence, then ASCII in the second, rest never sent',
      [text(hex(0x61, 0xe1, 0xbd), false), cont(utf8('x'), false)],
    ],
  ];
  for (const [id, name, frames] of failFast) {
    cases.push({ id, title: `${name}: 1007 before the message ends`, steps: [send(frames)], outcome: fails(INVALID_PAYLOAD) });
  }
  cases.push({
    id: '6.4.9',
    title: 'message ending inside a character (last fragment truncated) fails with 1007',
    steps: [send([text(kosme.subarray(0, 5), false), cont(kosme.subarray(5, 8))])],
    outcome: fails(INVALID_PAYLOAD),
  });
  cases.push({
    id: '6.4.10',
    title: 'valid text echoed, then an invalid one fails with 1007',
    steps: [send([text(kosme)]), expect(textMsg(kosme)), send([text(hex(0xce, 0xba, 0xff))])],
    outcome: fails(INVALID_PAYLOAD),
  });
  cases.push({
    id: '6.4.11',
    title: 'invalid UTF-8 in a binary message is not checked: echoed',
    steps: [send([binary(hex(0xff, 0xfe, 0xc0, 0xaf))]), expect(binaryMsg(hex(0xff, 0xfe, 0xc0, 0xaf)))],
    outcome: OPEN,
  });
  cases.push(...failFastInOneFrame());
  return { id: '6', title: 'UTF-8 handling', cases };
}

/**
 * Autobahn 6.4.3 and 6.4.4: one text frame in TCP chops. After the chop holding
 * the bad byte the rest of the frame is withheld, so the frame never completes:
 * the 1007 can only come from checking the payload as it arrives.
 */
function failFastInOneFrame(): ConformanceCase[] {
  const part1 = KOSME;
  const part2 = hex(0xf4, 0x90, 0x80, 0x80); // U+110000: above the last code point, invalid at 0x90
  const part3 = utf8('edited');
  const oneFrame = text(Buffer.concat([part1, part2, part3]));
  const [valid, invalid, rest] = frameChops(oneFrame, part1.length, part1.length + part2.length);
  expectWithheld(rest);
  // Cut from their own encoding: each encoding draws its own mask key.
  const [validAgain, upToBadByte, restAfterBadByte] = frameChops(oneFrame, part1.length, part1.length + 2);
  expectWithheld(restAfterBadByte);

  const surrogateFragment = cont(Buffer.concat([utf8('ab'), encode3(0xd800), utf8('cd')]));
  const [fragmentStart, fragmentBad, fragmentRest] = frameChops(surrogateFragment, 2, 4); // ED A0: a surrogate, invalid at A0
  expectWithheld(fragmentRest);

  const aClefB = utf8('a𝄞b'); // 61 F0 9D 84 9E 62
  const truncatedEnd = Buffer.concat([KOSME, hex(0xf0, 0x9d)]);
  return [
    {
      id: '6.4.3.chops',
      title: 'Autobahn 6.4.3: one frame in chops, valid / U+110000 / withheld rest: 1007 before the frame ends',
      steps: [send([valid]), send([invalid])],
      outcome: fails(INVALID_PAYLOAD),
    },
    {
      id: '6.4.4.chops',
      title: 'Autobahn 6.4.4: one frame in chops, the second up to the bad byte only, rest withheld: 1007 before the frame ends',
      steps: [send([validAgain]), send([upToBadByte])],
      outcome: fails(INVALID_PAYLOAD),
    },
    {
      id: '6.4.4.octets',
      title: 'one frame sent byte by byte up to the bad byte, rest withheld: 1007 before the frame ends',
      steps: [send([Buffer.concat([validAgain, upToBadByte])], 'octet')],
      outcome: fails(INVALID_PAYLOAD),
    },
    {
      id: '6.4.12',
      title: 'valid first fragment, then the second fragment in chops with a surrogate, rest withheld: 1007 before it ends',
      steps: [send([text(KOSME, false)]), send([fragmentStart]), send([fragmentBad])],
      outcome: fails(INVALID_PAYLOAD),
    },
    {
      id: '6.4.13',
      title: 'one frame with a 4-byte character cut across three chops is echoed',
      steps: [...frameChops(text(aClefB), 2, 3, 4).map((chop) => send([chop])), expect(textMsg(aClefB))],
      outcome: OPEN,
    },
    {
      id: '6.4.14',
      title: 'one frame of mixed-width text sent byte by byte is echoed',
      steps: [send([text(utf8Text(300))], 'octet'), expect(textMsg(utf8Text(300)))],
      outcome: OPEN,
    },
    {
      id: '6.4.15',
      title: 'a final frame sent byte by byte, ending inside a character, fails with 1007 once it ends',
      steps: [send([text(truncatedEnd)], 'octet')],
      outcome: fails(INVALID_PAYLOAD),
    },
    {
      id: '6.4.16',
      title: 'a first fragment in chops ending inside a character, completed by the next fragment, is echoed',
      steps: [
        ...frameChops(text(hex(0x61, 0xf0, 0x9d), false), 2).map((chop) => send([chop])),
        send([cont(hex(0x84, 0x9e))]),
        expect(textMsg(utf8('a𝄞'))),
      ],
      outcome: OPEN,
    },
  ];
}

/** A withheld rest must hold payload, or the frame would be complete and the case would prove nothing. */
function expectWithheld(rest: Buffer): void {
  if (rest.length === 0) throw new Error('fail-fast case: nothing of the frame is withheld');
}

// ------------------------------------------------------- 7 close handling

/**
 * Codes a peer may put in a Close frame (RFC 6455 §7.4.1, §7.4.2 and the IANA
 * registry): 1000-1003, 1007-1014, 3000-4999. 1004 is reserved, 1005, 1006
 * and 1015 must never be sent, 1016-2999 are unassigned, 0-999 unused.
 */
export const isValidCloseCode = (code: number) =>
  (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);

function closeHandling(): CaseGroup {
  const reason123 = Buffer.alloc(123, 0x2a);
  const reason123Utf8 = utf8Text(123);
  const cases: ConformanceCase[] = [
    {
      id: '7.1.1',
      title: 'text then close 1000 in one write: echo, then close 1000',
      steps: [send([text('Hello World!'), close(closeBody(NORMAL))]), expect(textMsg('Hello World!'))],
      outcome: { kind: 'close', code: NORMAL },
    },
    {
      id: '7.1.2',
      title: 'close twice: one close 1000 in reply, then TCP ends',
      steps: [send([close(closeBody(NORMAL)), close(closeBody(NORMAL))])],
      outcome: { kind: 'close', code: NORMAL },
    },
    {
      id: '7.1.3',
      title: 'close, then ping: close 1000 in reply, no pong',
      steps: [send([close(closeBody(NORMAL)), ping('out of band ping')])],
      outcome: { kind: 'close', code: NORMAL },
    },
    {
      id: '7.1.4',
      title: 'close, then text: close 1000 in reply, no echo',
      steps: [send([close(closeBody(NORMAL)), text('out of band text')])],
      outcome: { kind: 'close', code: NORMAL },
    },
    {
      id: '7.1.5',
      title: 'first fragment, close, last fragment: close 1000 in reply, no message',
      steps: [send([text('fragment1', false), close(closeBody(NORMAL)), cont('fragment2')])],
      outcome: { kind: 'close', code: NORMAL },
    },
    {
      id: '7.1.6',
      title: 'close, then binary and ping written octet by octet: close 1000, nothing else',
      steps: [send([close(closeBody(NORMAL)), binary(bytes(1, 2, 3)), ping('p')], 'octet')],
      outcome: { kind: 'close', code: NORMAL },
    },
    {
      id: '7.1.7',
      title: 'text echoed, then close: close 1000 in reply',
      steps: [send([text('Hello World!')]), expect(textMsg('Hello World!')), send([close(closeBody(NORMAL))])],
      outcome: { kind: 'close', code: NORMAL },
    },
    { id: '7.3.1', title: 'close without payload answered with close 1000', steps: [send([close()])], outcome: { kind: 'close', code: NORMAL } },
    { id: '7.3.2', title: 'close with a 1-byte payload fails with 1002', steps: [send([close(bytes(0x03))])], outcome: fails(PROTOCOL_ERROR) },
    {
      id: '7.3.3',
      title: 'close 1000 without reason echoed',
      steps: [send([close(closeBody(NORMAL))])],
      outcome: { kind: 'close', code: NORMAL, reason: '' },
    },
    {
      id: '7.3.4',
      title: 'close 1000 with a reason echoed',
      steps: [send([close(closeBody(NORMAL, 'Hello World!'))])],
      outcome: { kind: 'close', code: NORMAL, reason: 'Hello World!' },
    },
    {
      id: '7.3.5',
      title: 'close 1000 with a 123-byte reason (125-byte payload) echoed',
      steps: [send([close(closeBody(NORMAL, reason123))])],
      outcome: { kind: 'close', code: NORMAL, reason: reason123.toString() },
    },
    {
      id: '7.3.6',
      title: 'close 1000 with a 124-byte reason (126-byte payload) fails with 1002',
      steps: [send([close(closeBody(NORMAL, Buffer.alloc(124, 0x2a)))])],
      outcome: fails(PROTOCOL_ERROR),
    },
    {
      id: '7.3.7',
      title: 'close 3000 with a 123-byte multi-byte UTF-8 reason echoed',
      steps: [send([close(closeBody(3000, reason123Utf8))])],
      outcome: { kind: 'close', code: 3000, reason: reason123Utf8.toString() },
    },
    {
      id: '7.5.1',
      title: 'close 1000 with an invalid UTF-8 reason (encoded surrogate) fails with 1007',
      steps: [send([close(closeBody(NORMAL, Buffer.concat([KOSME, hex(0xed, 0xa0, 0x80), utf8('edited')])))])],
      outcome: fails(INVALID_PAYLOAD),
    },
    {
      id: '7.5.2',
      title: 'close 1000 with a truncated UTF-8 reason fails with 1007',
      steps: [send([close(closeBody(NORMAL, hex(0x61, 0xe1, 0xbd)))])],
      outcome: fails(INVALID_PAYLOAD),
    },
    {
      id: '7.5.3',
      title: 'close 3000 with a reason containing 0xFF fails with 1007',
      steps: [send([close(closeBody(3000, hex(0xff)))])],
      outcome: fails(INVALID_PAYLOAD),
    },
  ];

  const codes = [
    0, 1, 999, ...Array.from({ length: 17 }, (_, i) => 1000 + i), 1100, 2000, 2999, 3000, 3001, 3500, 3999, 4000, 4001, 4500, 4998, 4999,
    5000, 5001, 6000, 32768, 65535,
  ];
  let valid = 0;
  let invalid = 0;
  for (const code of codes) {
    if (isValidCloseCode(code)) {
      valid++;
      cases.push({
        id: `7.7.${valid}`,
        title: `close code ${code} echoed`,
        steps: [send([close(closeBody(code))])],
        outcome: { kind: 'close', code },
      });
    } else {
      invalid++;
      cases.push({
        id: `7.9.${invalid}`,
        title: `invalid close code ${code} fails with 1002`,
        steps: [send([close(closeBody(code))])],
        outcome: fails(PROTOCOL_ERROR),
      });
    }
  }
  return { id: '7', title: 'close handling', cases };
}

// ------------------------------------------ 9 large messages, many frames

function limits(): CaseGroup {
  const cases: ConformanceCase[] = [];
  const sizes = [kib(64), kib(256), kib(1024), kib(4096), kib(16384)];
  const chunk = kib(64);
  for (const [sub, opcode, name] of [[1, TEXT, 'text'], [2, BINARY, 'binary']] as const) {
    sizes.forEach((size, i) => {
      const payload = opcode === TEXT ? utf8Text(size) : pseudoRandom(size, size + i);
      cases.push({
        id: `9.${sub}.${i + 1}`,
        title: `${name} message of ${sizeName(size)} in one frame echoed`,
        steps: [send([{ opcode, payload }], chunk), expect(msg(opcode, payload))],
        outcome: OPEN,
      });
    });
  }
  for (const [sub, opcode, name] of [[3, TEXT, 'text'], [4, BINARY, 'binary']] as const) {
    sizes.forEach((size, i) => {
      const payload = opcode === TEXT ? utf8Text(size) : pseudoRandom(size, 3 * size + i);
      cases.push({
        id: `9.${sub}.${i + 1}`,
        title: `${name} message of ${sizeName(size)} in 64 KiB fragments echoed`,
        steps: [send(fragments(opcode, payload, chunk), chunk), expect(msg(opcode, payload))],
        outcome: OPEN,
      });
    });
  }
  const many = Array.from({ length: 10_000 }, (_, i) => utf8(`message ${i}`));
  cases.push({
    id: '9.5.1',
    title: '10 000 small text frames echoed in order',
    steps: [send(many.map((m) => text(m))), expect(...many.map((m) => textMsg(m)))],
    outcome: OPEN,
  });
  const manyBinary = Array.from({ length: 10_000 }, (_, i) => pseudoRandom(1 + (i % 16), i + 1));
  cases.push({
    id: '9.5.2',
    title: '10 000 small binary frames echoed in order',
    steps: [send(manyBinary.map((m) => binary(m))), expect(...manyBinary.map((m) => binaryMsg(m)))],
    outcome: OPEN,
  });
  return { id: '9', title: 'large messages and many frames', cases };
}

// -------------------------------------------------- 10 auto-fragmentation

function autoFragmentation(): CaseGroup {
  const cases: ConformanceCase[] = [];
  const plays = [
    [1, kib(4)],
    [64, kib(64)],
    [kib(4), kib(256)],
    [kib(64), kib(1024)],
  ] as const;
  for (const [sub, opcode, name] of [[1, TEXT, 'text'], [2, BINARY, 'binary']] as const) {
    plays.forEach(([fragmentSize, size], i) => {
      const payload = opcode === TEXT ? utf8Text(size) : pseudoRandom(size, 11 * size + i);
      cases.push({
        id: `10.${sub}.${i + 1}`,
        title: `${name} message of ${sizeName(size)} in ${sizeName(fragmentSize)} fragments echoed whole`,
        steps: [send(fragments(opcode, payload, fragmentSize), kib(64)), expect(msg(opcode, payload))],
        outcome: OPEN,
      });
    });
  }
  return { id: '10', title: 'auto-fragmentation', cases };
}

export const caseGroups: CaseGroup[] = [
  framing(),
  pingPong(),
  reservedBits(),
  opcodes(),
  fragmentation(),
  utf8Group(),
  closeHandling(),
  limits(),
  autoFragmentation(),
];
