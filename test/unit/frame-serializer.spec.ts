import { CloseReason } from '../../lib/protocol/close-reason.js';
import { Frame } from '../../lib/protocol/frame.js';
import { FrameParser } from '../../lib/protocol/frame-parser.js';
import { encodeFrameHeader, FrameSerializer } from '../../lib/protocol/frame-serializer.js';
import { naiveMask, parseChunks, view, type FrameView } from './helpers.js';

function wire(serializer: FrameSerializer, frame: Frame): Buffer {
  return Buffer.concat(serializer.serialize(frame));
}

function patterned(length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 13 + 7) & 0xff;
  return out;
}

function plain(type: string, opcode: number, fin: boolean, payload: Buffer | string, rsv = [false, false, false]): FrameView {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return { type, opcode, fin, rsv: rsv as [boolean, boolean, boolean], hex: data.toString('hex') };
}

describe('FrameSerializer: header bytes (RFC 6455 §5.2), computed by hand', () => {
  // [payload length, expected header of an unmasked FIN BINARY frame]
  const cases: Array<[number, number[]]> = [
    [0, [0x82, 0x00]],
    [1, [0x82, 0x01]],
    [125, [0x82, 0x7d]],
    [126, [0x82, 0x7e, 0x00, 0x7e]],
    [127, [0x82, 0x7e, 0x00, 0x7f]],
    [256, [0x82, 0x7e, 0x01, 0x00]],
    [65535, [0x82, 0x7e, 0xff, 0xff]],
    [65536, [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]],
    [100000, [0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x86, 0xa0]], // 100000 = 0x0186a0
  ];

  it.each(cases)('length %i: unmasked header and payload', (length, header) => {
    const payload = patterned(length);
    const bytes = wire(new FrameSerializer(), new Frame.Binary(payload));
    expect([...bytes.subarray(0, header.length)]).toEqual(header);
    expect(bytes.length).toBe(header.length + length);
    expect(Buffer.compare(bytes.subarray(header.length), payload)).toBe(0);
  });

  it.each(cases)('length %i: masked header has the MASK bit, a key, and the payload XORed with it', (length, header) => {
    const payload = patterned(length);
    const bytes = wire(new FrameSerializer({ masking: true }), new Frame.Binary(payload));
    const maskedHeader = [header[0], header[1] | 0x80, ...header.slice(2)];
    expect([...bytes.subarray(0, maskedHeader.length)]).toEqual(maskedHeader);
    expect(bytes.length).toBe(maskedHeader.length + 4 + length);
    const key = bytes.subarray(maskedHeader.length, maskedHeader.length + 4);
    const body = bytes.subarray(maskedHeader.length + 4);
    expect(Buffer.compare(naiveMask(body, key), payload)).toBe(0);
  });

  it('encodeFrameHeader writes 64-bit lengths beyond 2^32 big-endian', () => {
    // 2^32 + 5
    expect([...encodeFrameHeader(0x2, true, 0, 2 ** 32 + 5)]).toEqual([
      0x82, 0x7f, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x05,
    ]);
    // 2^40 + 0x01020304
    expect([...encodeFrameHeader(0x2, false, 0, 2 ** 40 + 0x01020304)]).toEqual([
      0x02, 0x7f, 0x00, 0x00, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04,
    ]);
  });

  it('encodeFrameHeader sets FIN, RSV and opcode bits and appends the mask key', () => {
    expect([...encodeFrameHeader(0x1, true, 0x4, 3)]).toEqual([0xc1, 0x03]);
    expect([...encodeFrameHeader(0x1, false, 0x2, 3)]).toEqual([0x21, 0x03]);
    expect([...encodeFrameHeader(0x0, true, 0x1, 3)]).toEqual([0x90, 0x03]);
    expect([...encodeFrameHeader(0x9, true, 0, 5, Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]))]).toEqual([
      0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d,
    ]);
    expect([...encodeFrameHeader(0x2, true, 0, 200, Uint8Array.from([1, 2, 3, 4]))]).toEqual([
      0x82, 0xfe, 0x00, 0xc8, 1, 2, 3, 4,
    ]);
  });

  it('writes the RFC 6455 unmasked "Hello" and ping examples byte for byte', () => {
    const serializer = new FrameSerializer();
    expect([...wire(serializer, new Frame.Text('Hello'))]).toEqual([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    expect([...wire(serializer, new Frame.Ping('Hello'))]).toEqual([0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
  });
});

describe('FrameSerializer: round trips through FrameParser', () => {
  const frames: Array<[string, Frame, FrameView]> = [
    ['text', new Frame.Text('Hello, κόσμε 𝄞'), plain('TEXT', 1, true, 'Hello, κόσμε 𝄞')],
    ['empty text', new Frame.Text(''), plain('TEXT', 1, true, '')],
    ['binary', new Frame.Binary(patterned(300)), plain('BINARY', 2, true, patterned(300))],
    ['binary 70000', new Frame.Binary(patterned(70000)), plain('BINARY', 2, true, patterned(70000))],
    ['ping', new Frame.Ping('are you there'), plain('PING', 9, true, 'are you there')],
    ['pong', new Frame.Pong(Uint8Array.from([1, 2, 3])), plain('PONG', 10, true, Buffer.from([1, 2, 3]))],
    ['empty ping', new Frame.Ping(), plain('PING', 9, true, '')],
    [
      'close with reason',
      new Frame.Close(new CloseReason(1001, 'going')),
      plain('CLOSE', 8, true, Buffer.from([0x03, 0xe9, 0x67, 0x6f, 0x69, 0x6e, 0x67])),
    ],
    ['empty close', new Frame.Close(), plain('CLOSE', 8, true, '')],
    [
      'rsv1+rsv3 text',
      new Frame.Text(true, 'x', true, false, true),
      plain('TEXT', 1, true, 'x', [true, false, true]),
    ],
    ['rsv2 binary', new Frame.Binary(true, Uint8Array.from([7]), false, true, false), plain('BINARY', 2, true, Buffer.from([7]), [false, true, false])],
  ];

  it.each(frames)('%s, unmasked (server to client)', (_name, frame, expected) => {
    const parser = new FrameParser({ maxFrameSize: 1 << 20, requireMask: false, allowedRsv: 7 });
    const parsed = parseChunks(parser, new FrameSerializer().serialize(frame));
    expect(parsed.map(view)).toEqual([expected]);
  });

  it.each(frames)('%s, masked (client to server)', (_name, frame, expected) => {
    const parser = new FrameParser({ maxFrameSize: 1 << 20, requireMask: true, allowedRsv: 7 });
    const parsed = parseChunks(parser, new FrameSerializer({ masking: true }).serialize(frame));
    expect(parsed.map(view)).toEqual([expected]);
  });

  it('masking never alters the frame it was given (it can be sent again)', () => {
    const payload = patterned(20000); // above the 16 KiB merge limit too
    const frame = new Frame.Binary(payload);
    const before = Buffer.from(payload);
    const serializer = new FrameSerializer({ masking: true });
    const first = Buffer.concat(serializer.serialize(frame));
    const second = Buffer.concat(serializer.serialize(frame));
    expect(Buffer.compare(frame.data, before)).toBe(0);
    const parsed = parseChunks(new FrameParser({ maxFrameSize: 1 << 20, requireMask: true }), [first, second]);
    expect(parsed.map((f) => Buffer.compare(f.data, before))).toEqual([0, 0]);
  });

  it('uses a fresh mask key for each frame', () => {
    const serializer = new FrameSerializer({ masking: true });
    const keys = new Set<string>();
    for (let i = 0; i < 20; i++) keys.add(wire(serializer, new Frame.Text('k')).subarray(2, 6).toString('hex'));
    // 20 random 32-bit keys all equal is a ~2^-608 event.
    expect(keys.size).toBeGreaterThan(1);
  });
});

describe('FrameSerializer: fragmented messages', () => {
  it('sends the first fragment with its opcode and the rest with the continuation opcode 0', () => {
    const serializer = new FrameSerializer();
    const bytes = [
      new Frame.Text(false, 'Hel'),
      new Frame.Ping('p'),
      new Frame.Text(false, 'l'),
      new Frame.Text(true, 'lo'),
      new Frame.Text('next'),
    ].map((frame) => wire(serializer, frame));
    // By hand: TEXT no FIN = 0x01; PING FIN = 0x89; continuation no FIN = 0x00;
    // continuation FIN = 0x80; a new TEXT message = 0x81.
    expect(bytes.map((b) => b[0])).toEqual([0x01, 0x89, 0x00, 0x80, 0x81]);
    expect([...bytes[0]]).toEqual([0x01, 0x03, 0x48, 0x65, 0x6c]); // RFC 6455 §5.7
    expect([...bytes[3]]).toEqual([0x80, 0x02, 0x6c, 0x6f]); // RFC 6455 §5.7
  });

  it('parses them back typed as their message, with their fin bits', () => {
    const serializer = new FrameSerializer({ masking: true });
    const parser = new FrameParser({ maxFrameSize: 1 << 20, requireMask: true });
    const out = parseChunks(
      parser,
      [
        new Frame.Text(false, 'frag-1 '),
        new Frame.Pong('mid'),
        new Frame.Text(false, 'frag-2 '),
        new Frame.Text(true, 'end'),
        new Frame.Binary(false, Uint8Array.from([1])),
        new Frame.Binary(false, Uint8Array.from([2])),
        new Frame.Ping(),
        new Frame.Binary(true, Uint8Array.from([3])),
        new Frame.Text('whole'),
      ].flatMap((frame) => serializer.serialize(frame)),
    );
    expect(out.map(view)).toEqual([
      plain('TEXT', 1, false, 'frag-1 '),
      plain('PONG', 10, true, 'mid'),
      plain('TEXT', 1, false, 'frag-2 '),
      plain('TEXT', 1, true, 'end'),
      plain('BINARY', 2, false, Buffer.from([1])),
      plain('BINARY', 2, false, Buffer.from([2])),
      plain('PING', 9, true, ''),
      plain('BINARY', 2, true, Buffer.from([3])),
      plain('TEXT', 1, true, 'whole'),
    ]);
  });

  it('a single unfragmented message keeps its opcode every time', () => {
    const serializer = new FrameSerializer();
    const firsts = [new Frame.Text('a'), new Frame.Binary(Uint8Array.from([1])), new Frame.Text('b')].map(
      (frame) => wire(serializer, frame)[0],
    );
    expect(firsts).toEqual([0x81, 0x82, 0x81]);
  });
});

describe('FrameSerializer: control frame size (RFC 6455 §5.5)', () => {
  it.each([
    ['Ping', () => new Frame.Ping(Buffer.alloc(126))],
    ['Pong', () => new Frame.Pong(Buffer.alloc(126))],
    ['Close', () => new Frame.Close(new CloseReason(1000, 'x'.repeat(124)))],
  ])('refuses a %s frame of 126 bytes', (_, build) => {
    expect(() => new FrameSerializer().serialize(build())).toThrow(RangeError);
  });

  it('takes a 125-byte control frame', () => {
    const [bytes] = new FrameSerializer().serialize(new Frame.Ping(Buffer.alloc(125)));
    expect(bytes.length).toBe(2 + 125);
    expect(bytes[1]).toBe(125);
  });
});
