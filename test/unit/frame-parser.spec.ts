import { jest } from '@jest/globals';
import { FrameParser, type FrameParserOptions } from '../../lib/protocol/frame-parser.js';
import { FrameType } from '../../lib/protocol/frame-type.js';
import {
  catchError,
  drain,
  expectProtocolError,
  parseChunks,
  prng,
  randomInt,
  view,
  wireFrame,
  type FrameView,
} from './helpers.js';

const SERVER: FrameParserOptions = { maxFrameSize: 1 << 20, requireMask: true };
const CLIENT: FrameParserOptions = { maxFrameSize: 1 << 20, requireMask: false };

function bytes(...values: number[]): Buffer {
  return Buffer.from(values);
}

function expected(type: string, opcode: number, fin: boolean, payload: Buffer | string): FrameView {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return { type, opcode, fin, rsv: [false, false, false], hex: data.toString('hex') };
}

describe('FrameParser: RFC 6455 §5.7 examples', () => {
  it('parses a single-frame unmasked text message', () => {
    const frames = parseChunks(new FrameParser(CLIENT), [bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f)]);
    expect(frames.map(view)).toEqual([expected('TEXT', 1, true, 'Hello')]);
  });

  it('parses a single-frame masked text message', () => {
    const wire = bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58);
    const frames = parseChunks(new FrameParser(SERVER), [wire]);
    expect(frames.map(view)).toEqual([expected('TEXT', 1, true, 'Hello')]);
    expect(frames[0].readText()).toBe('Hello');
  });

  it('parses a fragmented unmasked text message, the continuation typed TEXT', () => {
    const frames = parseChunks(new FrameParser(CLIENT), [
      bytes(0x01, 0x03, 0x48, 0x65, 0x6c),
      bytes(0x80, 0x02, 0x6c, 0x6f),
    ]);
    expect(frames.map(view)).toEqual([expected('TEXT', 1, false, 'Hel'), expected('TEXT', 1, true, 'lo')]);
  });

  it('parses an unmasked ping and a masked pong', () => {
    const ping = parseChunks(new FrameParser(CLIENT), [bytes(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f)]);
    expect(ping.map(view)).toEqual([expected('PING', 9, true, 'Hello')]);
    const pong = parseChunks(new FrameParser(SERVER), [
      bytes(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
    ]);
    expect(pong.map(view)).toEqual([expected('PONG', 10, true, 'Hello')]);
  });

  it('parses 256 bytes of binary data (16-bit length 0x7e 0x0100)', () => {
    const payload = Buffer.alloc(256);
    for (let i = 0; i < 256; i++) payload[i] = i;
    const frames = parseChunks(new FrameParser(CLIENT), [Buffer.concat([bytes(0x82, 0x7e, 0x01, 0x00), payload])]);
    expect(frames.map(view)).toEqual([expected('BINARY', 2, true, payload)]);
  });

  it('parses 64KiB of binary data (64-bit length 0x7f 0x0000000000010000)', () => {
    const payload = Buffer.alloc(65536);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const header = bytes(0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00);
    const frames = parseChunks(new FrameParser(CLIENT), [Buffer.concat([header, payload])]);
    expect(frames).toHaveLength(1);
    expect(frames[0].frameType).toBe(FrameType.BINARY);
    expect(frames[0].fin).toBe(true);
    expect(Buffer.compare(frames[0].data, payload)).toBe(0);
  });
});

describe('FrameParser: any chunking gives the same frames', () => {
  const binary200 = Buffer.alloc(200);
  for (let i = 0; i < binary200.length; i++) binary200[i] = (i * 7 + 3) & 0xff;
  const closePayload = Buffer.concat([bytes(0x03, 0xe8), Buffer.from('bye')]); // 1000 = 0x03e8

  // [wire spec, expected frame] pairs. The masked "Hello" is RFC 6455's literal example.
  const parts: Array<{ wire: Buffer; masklessWire: Buffer; frame: FrameView }> = [
    {
      wire: bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
      masklessWire: bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f),
      frame: expected('TEXT', 1, true, 'Hello'),
    },
    ...(
      [
        [{ opcode: 0x2, payload: binary200 }, expected('BINARY', 2, true, binary200)],
        [{ opcode: 0x9, payload: 'ping!' }, expected('PING', 9, true, 'ping!')],
        [{ opcode: 0x1, fin: false, payload: 'frag-1 κό' }, expected('TEXT', 1, false, 'frag-1 κό')],
        [{ opcode: 0x0, fin: false, payload: 'σμε' }, expected('TEXT', 1, false, 'σμε')],
        [{ opcode: 0xa, payload: '' }, expected('PONG', 10, true, '')],
        [{ opcode: 0x9, payload: 'mid' }, expected('PING', 9, true, 'mid')],
        [{ opcode: 0x0, fin: true, payload: '-end' }, expected('TEXT', 1, true, '-end')],
        [{ opcode: 0x2, payload: '' }, expected('BINARY', 2, true, '')],
        [{ opcode: 0x8, payload: closePayload }, expected('CLOSE', 8, true, closePayload)],
      ] as const
    ).map(([spec, frame], i) => ({
      wire: wireFrame({ ...spec, mask: [0x11 * (i + 1), 0xa5, 0x5a ^ i, 0xff - i] }),
      masklessWire: wireFrame(spec),
      frame,
    })),
  ];
  const masked = Buffer.concat(parts.map((p) => p.wire));
  const unmasked = Buffer.concat(parts.map((p) => p.masklessWire));
  const frames = parts.map((p) => p.frame);

  it('the test stream is what it claims (spot checks of the hand-built wire bytes)', () => {
    // binary200: FIN+BINARY, MASK|126, 0x00 0xc8 (200), then the key.
    expect([...parts[1].wire.subarray(0, 4)]).toEqual([0x82, 0xfe, 0x00, 0xc8]);
    // first fragment: no FIN, opcode TEXT; continuation: opcode 0.
    expect(parts[3].wire[0]).toBe(0x01);
    expect(parts[4].wire[0]).toBe(0x00);
    expect(parts[7].wire[0]).toBe(0x80);
    expect(masked.length).toBeGreaterThan(300);
  });

  it('parses the whole stream in one push', () => {
    const parser = new FrameParser(SERVER);
    expect(parseChunks(parser, [masked]).map(view)).toEqual(frames);
    expect(parser.bufferedBytes).toBe(0);
    expect(parser.next()).toBeUndefined();
  });

  it('gives the same frames for every split of the stream into two chunks', () => {
    for (let cut = 0; cut <= masked.length; cut++) {
      const parser = new FrameParser(SERVER);
      const got = parseChunks(parser, [masked.subarray(0, cut), masked.subarray(cut)]).map(view);
      if (JSON.stringify(got) !== JSON.stringify(frames)) {
        throw new Error(`split at byte ${cut} gave different frames`);
      }
      expect(parser.bufferedBytes).toBe(0);
    }
    expect(parseChunks(new FrameParser(SERVER), [masked.subarray(0, 100), masked.subarray(100)]).map(view)).toEqual(
      frames,
    );
  });

  it('gives the same frames for every split of the unmasked stream into two chunks', () => {
    for (let cut = 0; cut <= unmasked.length; cut++) {
      const got = parseChunks(new FrameParser(CLIENT), [unmasked.subarray(0, cut), unmasked.subarray(cut)]).map(view);
      expect(got).toEqual(frames);
    }
  });

  it('gives the same frames fed byte by byte, each frame exactly when its last byte arrives', () => {
    const parser = new FrameParser(SERVER);
    const got: FrameView[] = [];
    const completedAt: number[] = [];
    for (let i = 0; i < masked.length; i++) {
      parser.push(Buffer.from([masked[i]]));
      for (const frame of drain(parser)) {
        got.push(view(frame));
        completedAt.push(i + 1);
      }
    }
    expect(got).toEqual(frames);
    // Frame k completes at the cumulative wire length of frames 0..k.
    const ends: number[] = [];
    let total = 0;
    for (const part of parts) ends.push((total += part.wire.length));
    expect(completedAt).toEqual(ends);
  });

  it('gives the same frames for every split into three chunks over the first frames', () => {
    // All pairs of cut points over the first 60 bytes (Hello, binary header and part of its payload).
    const head = masked.subarray(0, 60);
    const tail = masked.subarray(60);
    for (let a = 0; a <= head.length; a++) {
      for (let b = a; b <= head.length; b++) {
        const got = parseChunks(new FrameParser(SERVER), [head.subarray(0, a), head.subarray(a, b), head.subarray(b), tail]);
        if (got.length !== frames.length || JSON.stringify(got.map(view)) !== JSON.stringify(frames)) {
          throw new Error(`cuts at ${a}, ${b} gave different frames`);
        }
      }
    }
  });

  it('gives the same frames for random multi-chunk splits', () => {
    const rand = prng(0x5eed);
    for (let run = 0; run < 300; run++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < masked.length; ) {
        const size = 1 + randomInt(rand, run % 2 === 0 ? 8 : 64);
        chunks.push(masked.subarray(at, at + size));
        at += size;
      }
      expect(parseChunks(new FrameParser(SERVER), chunks).map(view)).toEqual(frames);
    }
  });

  it('hands out one frame per next() call (the caller pulls)', () => {
    const parser = new FrameParser(SERVER);
    parser.push(Buffer.from(masked));
    expect(parser.bufferedBytes).toBe(masked.length);
    const first = parser.next();
    expect(first && view(first)).toEqual(frames[0]);
    expect(parser.bufferedBytes).toBe(masked.length - parts[0].wire.length);
    const second = parser.next();
    expect(second && view(second)).toEqual(frames[1]);
    expect(parser.bufferedBytes).toBe(masked.length - parts[0].wire.length - parts[1].wire.length);
  });

  it('returns undefined with nothing or only part of a frame buffered, and ignores empty pushes', () => {
    const parser = new FrameParser(SERVER);
    expect(parser.next()).toBeUndefined();
    parser.push(Buffer.alloc(0));
    expect(parser.bufferedBytes).toBe(0);
    expect(parser.next()).toBeUndefined();
    parser.push(Buffer.from(masked.subarray(0, 10))); // "Hello" frame is 11 bytes
    expect(parser.next()).toBeUndefined();
    parser.push(Buffer.from(masked.subarray(10, 11)));
    const frame = parser.next();
    expect(frame?.readText()).toBe('Hello');
  });
});

describe('FrameParser: protocol errors', () => {
  const KEY = [0x01, 0x02, 0x03, 0x04];

  function pushAndNext(options: FrameParserOptions, ...chunks: number[][]) {
    const parser = new FrameParser(options);
    return () => {
      for (const chunk of chunks) {
        parser.push(Buffer.from(chunk));
        drain(parser);
      }
    };
  }

  it.each([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])('rejects reserved opcode %i with 1002, from the header alone', (opcode) => {
    expectProtocolError(pushAndNext(SERVER, [0x80 | opcode, 0x80]), 1002);
    expectProtocolError(pushAndNext(CLIENT, [0x80 | opcode, 0x00]), 1002);
  });

  it.each([
    ['RSV1', 0x40],
    ['RSV2', 0x20],
    ['RSV3', 0x10],
  ])('rejects %s without a negotiated extension with 1002', (_name, bit) => {
    expectProtocolError(pushAndNext(SERVER, [0x81 | bit, 0x80]), 1002);
    expectProtocolError(pushAndNext({ ...SERVER, allowedRsv: 0 }, [0x81 | bit, 0x80]), 1002);
  });

  it('accepts RSV1 when allowedRsv permits it, and reports it on the frame', () => {
    const parser = new FrameParser({ ...SERVER, allowedRsv: 0x4 });
    const frames = parseChunks(parser, [wireFrame({ opcode: 0x1, rsv: 0x4, payload: 'x', mask: KEY })]);
    expect(frames.map(view)).toEqual([{ ...expected('TEXT', 1, true, 'x'), rsv: [true, false, false] }]);
  });

  it('still rejects RSV2/RSV3 when only RSV1 is allowed', () => {
    expectProtocolError(pushAndNext({ ...SERVER, allowedRsv: 0x4 }, [0xa1, 0x80]), 1002);
    expectProtocolError(pushAndNext({ ...SERVER, allowedRsv: 0x4 }, [0x91, 0x80]), 1002);
  });

  it('accepts all three RSV bits when all are allowed, reporting each one', () => {
    for (const [rsv, flags] of [
      [0x4, [true, false, false]],
      [0x2, [false, true, false]],
      [0x1, [false, false, true]],
      [0x7, [true, true, true]],
    ] as const) {
      const frames = parseChunks(new FrameParser({ ...SERVER, allowedRsv: 0x7 }), [
        wireFrame({ opcode: 0x2, rsv, payload: bytes(9), mask: KEY }),
      ]);
      expect(frames.map(view)).toEqual([{ ...expected('BINARY', 2, true, bytes(9)), rsv: flags }]);
    }
  });

  it('rejects an unmasked frame with 1002 when masking is required', () => {
    expectProtocolError(pushAndNext(SERVER, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]), 1002);
    expectProtocolError(pushAndNext(SERVER, [0x81, 0x05]), 1002);
    expectProtocolError(pushAndNext(SERVER, [0x89, 0x00]), 1002);
  });

  it('accepts a masked frame when masking is not required', () => {
    const frames = parseChunks(new FrameParser(CLIENT), [
      bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
    ]);
    expect(frames[0].readText()).toBe('Hello');
  });

  it.each([
    ['CLOSE', 0x8],
    ['PING', 0x9],
    ['PONG', 0xa],
  ])('rejects a fragmented (fin=0) %s control frame with 1002', (_name, opcode) => {
    expectProtocolError(pushAndNext(SERVER, [opcode, 0x80]), 1002);
  });

  it.each([
    ['CLOSE', 0x8],
    ['PING', 0x9],
    ['PONG', 0xa],
  ])('rejects a %s control frame longer than 125 bytes with 1002, at the header', (_name, opcode) => {
    // 126 in the 16-bit form, and 127 with the 64-bit form.
    expectProtocolError(pushAndNext(SERVER, [0x80 | opcode, 0x80 | 126]), 1002);
    expectProtocolError(pushAndNext(SERVER, [0x80 | opcode, 0x80 | 127]), 1002);
    expectProtocolError(pushAndNext(CLIENT, [0x80 | opcode, 126, 0x00, 0x7e]), 1002);
  });

  it('accepts a control frame of exactly 125 bytes', () => {
    const payload = Buffer.alloc(125, 0x61);
    const frames = parseChunks(new FrameParser(SERVER), [wireFrame({ opcode: 0x9, payload, mask: KEY })]);
    expect(frames.map(view)).toEqual([expected('PING', 9, true, payload)]);
  });

  it('rejects a continuation frame with no message in progress with 1002', () => {
    expectProtocolError(pushAndNext(SERVER, [0x80, 0x80]), 1002);
    expectProtocolError(pushAndNext(SERVER, [0x00, 0x80]), 1002);
    // ... also right after a fragmented message has ended.
    expectProtocolError(
      pushAndNext(
        SERVER,
        [...wireFrame({ opcode: 0x1, fin: false, payload: 'a', mask: KEY })],
        [...wireFrame({ opcode: 0x0, fin: true, payload: 'b', mask: KEY })],
        [...wireFrame({ opcode: 0x0, fin: true, payload: 'c', mask: KEY })],
      ),
      1002,
    );
  });

  it.each([
    ['text', 0x81],
    ['binary', 0x82],
    ['unfinished text', 0x01],
  ])('rejects a new %s frame during a fragmented message with 1002', (_name, b0) => {
    const first = [...wireFrame({ opcode: 0x1, fin: false, payload: 'part', mask: KEY })];
    expectProtocolError(pushAndNext(SERVER, first, [b0, 0x80]), 1002);
  });

  it('allows a new message after a fragmented one ended', () => {
    const frames = parseChunks(new FrameParser(SERVER), [
      wireFrame({ opcode: 0x2, fin: false, payload: 'a', mask: KEY }),
      wireFrame({ opcode: 0x0, fin: true, payload: 'b', mask: KEY }),
      wireFrame({ opcode: 0x1, fin: true, payload: 'c', mask: KEY }),
    ]);
    expect(frames.map(view)).toEqual([
      expected('BINARY', 2, false, 'a'),
      expected('BINARY', 2, true, 'b'),
      expected('TEXT', 1, true, 'c'),
    ]);
  });

  it('rejects a 64-bit length with the most significant bit set with 1002', () => {
    expectProtocolError(pushAndNext(SERVER, [0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0]), 1002);
    expectProtocolError(pushAndNext(CLIENT, [0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), 1002);
    // Even with a huge maxFrameSize the MSB is a framing error, not a size one.
    expectProtocolError(
      pushAndNext({ maxFrameSize: Number.MAX_SAFE_INTEGER, requireMask: false }, [0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1]),
      1002,
    );
  });

  describe('maxFrameSize (1009 at the header, before the payload)', () => {
    it('7-bit length: 11 > 10 throws with only the 2 header bytes pushed; 10 is accepted', () => {
      expectProtocolError(pushAndNext({ maxFrameSize: 10, requireMask: true }, [0x82, 0x80 | 11]), 1009);
      const parser = new FrameParser({ maxFrameSize: 10, requireMask: true });
      parser.push(bytes(0x82, 0x80 | 10));
      expect(parser.next()).toBeUndefined();
    });

    it('16-bit length: 1001 > 1000 throws with only the 4 header bytes pushed, once the length is complete', () => {
      const parser = new FrameParser({ maxFrameSize: 1000, requireMask: true });
      parser.push(bytes(0x82, 0xfe, 0x03)); // length 0x03e9 = 1001, second byte missing
      expect(parser.next()).toBeUndefined();
      parser.push(bytes(0xe9));
      expectProtocolError(() => parser.next(), 1009);
    });

    it('16-bit length: exactly maxFrameSize (1000 = 0x03e8) is accepted', () => {
      const payload = Buffer.alloc(1000, 0x42);
      const wire = wireFrame({ opcode: 0x2, payload, mask: KEY });
      expect([...wire.subarray(0, 4)]).toEqual([0x82, 0xfe, 0x03, 0xe8]);
      const frames = parseChunks(new FrameParser({ maxFrameSize: 1000, requireMask: true }), [wire]);
      expect(frames.map(view)).toEqual([expected('BINARY', 2, true, payload)]);
    });

    it('64-bit length: 65537 > 65536 throws with only the 10 header bytes pushed', () => {
      expectProtocolError(
        pushAndNext({ maxFrameSize: 65536, requireMask: true }, [0x82, 0xff, 0, 0, 0, 0, 0, 0x01, 0x00, 0x01]),
        1009,
      );
    });

    it('64-bit length: 2^32 is not read as 0 (the high word counts)', () => {
      expectProtocolError(
        pushAndNext({ maxFrameSize: 1 << 20, requireMask: true }, [0x82, 0xff, 0, 0, 0, 0x01, 0, 0, 0, 0]),
        1009,
      );
    });

    it.each([
      ['2^53', [0x00, 0x20, 0, 0, 0, 0, 0, 0]],
      ['2^62', [0x40, 0, 0, 0, 0, 0, 0, 0]],
      ['2^63 - 1', [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
    ])('64-bit length %s throws 1009 at the header and allocates nothing large', (_name, length) => {
      // spyOn calls through to the real functions and records each requested size.
      const spies = [jest.spyOn(Buffer, 'alloc'), jest.spyOn(Buffer, 'allocUnsafe'), jest.spyOn(Buffer, 'allocUnsafeSlow')];
      let sizes: number[];
      try {
        const parser = new FrameParser({ maxFrameSize: 1 << 20, requireMask: true });
        parser.push(bytes(0x82, 0xff, ...length)); // header only: no mask key, no payload
        const error = catchError(() => parser.next());
        expect(error).toMatchObject({ name: 'WebSocketProtocolError', closeCode: 1009 });
        sizes = spies.flatMap((spy) => spy.mock.calls.map((call) => Number(call[0])));
      } finally {
        for (const spy of spies) spy.mockRestore();
      }
      expect(sizes.filter((size) => !(size <= 1024))).toEqual([]);
    });

    it('applies to control and continuation frames too', () => {
      expectProtocolError(pushAndNext({ maxFrameSize: 4, requireMask: true }, [0x89, 0x85]), 1009);
      expectProtocolError(
        pushAndNext(
          { maxFrameSize: 4, requireMask: true },
          [...wireFrame({ opcode: 0x1, fin: false, payload: 'abcd', mask: KEY })],
          [0x80, 0x85],
        ),
        1009,
      );
    });
  });
});

describe('FrameParser: UTF-8 checked as text arrives (validateUtf8)', () => {
  const CHECKING: FrameParserOptions = { maxFrameSize: 1 << 20, requireMask: true, validateUtf8: true };
  const MASK = [0x37, 0xfa, 0x21, 0x3d];
  /** Header length of a masked frame with a 7-bit length. */
  const HEADER = 6;

  const masked = (opcode: number, payload: Buffer | string, fin = true, rsv = 0) => wireFrame({ opcode, payload, fin, rsv, mask: MASK });

  /** Pushes each chunk and drains; returns the frames, or the error the parser threw with the index of the chunk that caused it. */
  function feed(parser: FrameParser, chunks: Buffer[]): { frames: string[]; failedAt?: number; code?: number } {
    const frames: string[] = [];
    for (let i = 0; i < chunks.length; i++) {
      parser.push(Buffer.from(chunks[i]));
      const error = catchError(() => drain(parser).forEach((frame) => frames.push(`${frame.frameType.name}:${frame.data.toString('hex')}`)));
      if (error !== undefined) return { frames, failedAt: i, code: (error as { closeCode?: number }).closeCode };
    }
    return { frames };
  }

  it('fails with 1007 at the chunk holding the bad byte, before a single frame is complete', () => {
    // "ab", then U+110000 (F4 90 80 80: bad at 0x90), then "cdef".
    const wire = masked(0x1, bytes(0x61, 0x62, 0xf4, 0x90, 0x80, 0x80, 0x63, 0x64, 0x65, 0x66));
    const chunks = [wire.subarray(0, HEADER + 2), wire.subarray(HEADER + 2, HEADER + 3), wire.subarray(HEADER + 3, HEADER + 4), wire.subarray(HEADER + 4)];
    expect(feed(new FrameParser(CHECKING), chunks)).toEqual({ frames: [], failedAt: 2, code: 1007 });
  });

  it('fails with 1007 at the bad byte of a second fragment arriving in pieces', () => {
    const first = masked(0x1, 'κόσμε', false);
    const second = masked(0x0, bytes(0x61, 0x62, 0xed, 0xa0, 0x80, 0x63)); // ED A0: a surrogate, bad at A0
    const chunks = [first, second.subarray(0, HEADER + 3), second.subarray(HEADER + 3, HEADER + 4), second.subarray(HEADER + 4)];
    const result = feed(new FrameParser(CHECKING), chunks);
    expect(result.failedAt).toBe(2);
    expect(result.code).toBe(1007);
  });

  it('carries a character cut by a fragment boundary into the next fragment arriving in pieces', () => {
    // The first fragment ends in F0 9D; the second must start with continuation bytes, "A" is not one.
    const chunks = [masked(0x1, bytes(0x61, 0xf0, 0x9d), false), masked(0x0, bytes(0x41, 0x42, 0x43)).subarray(0, HEADER + 1)];
    expect(feed(new FrameParser(CHECKING), chunks)).toEqual({ frames: ['TEXT:61f09d'], failedAt: 1, code: 1007 });
  });

  it('takes a character cut at a chunk end, and at a fragment end with a ping between', () => {
    const frame = masked(0x1, bytes(0x61, 0xf0, 0x9d, 0x84, 0x9e));
    expect(feed(new FrameParser(CHECKING), [frame.subarray(0, HEADER + 3), frame.subarray(HEADER + 3)])).toEqual({ frames: ['TEXT:61f09d849e'] });

    const second = masked(0x0, bytes(0x84, 0x9e, 0x62));
    const chunks = [masked(0x1, bytes(0x61, 0xf0, 0x9d), false), masked(0x9, 'p'), second.subarray(0, HEADER + 1), second.subarray(HEADER + 1)];
    expect(feed(new FrameParser(CHECKING), chunks)).toEqual({ frames: ['TEXT:61f09d', 'PING:70', 'TEXT:849e62'] });
  });

  it('fails a final frame ending inside a character only once its last byte is in', () => {
    const frame = masked(0x1, bytes(0x61, 0xf0, 0x9d));
    const chunks = [frame.subarray(0, HEADER + 2), frame.subarray(HEADER + 2)];
    expect(feed(new FrameParser(CHECKING), chunks)).toEqual({ frames: [], failedAt: 1, code: 1007 });
  });

  it('fails invalid text arriving whole in one chunk, and a fragmented message ending inside a character', () => {
    expect(feed(new FrameParser(CHECKING), [masked(0x1, bytes(0x61, 0xff))])).toEqual({ frames: [], failedAt: 0, code: 1007 });
    const chunks = [masked(0x1, 'a', false), masked(0x0, bytes(0xce))];
    expect(feed(new FrameParser(CHECKING), chunks)).toEqual({ frames: ['TEXT:61'], failedAt: 1, code: 1007 });
  });

  it('unmasks and passes mixed-width text fed byte by byte, and in random chunks, over a 16-bit length', () => {
    const text = 'Hello-µ@ßöäüàá-UTF-8!! κόσμε 𝄞 ✓ '.repeat(8);
    const wire = masked(0x1, text);
    expect(wire[1] & 0x7f).toBe(126);
    const oneByOne = [...wire].map((byte) => bytes(byte));
    expect(feed(new FrameParser(CHECKING), oneByOne)).toEqual({ frames: [`TEXT:${Buffer.from(text).toString('hex')}`] });
    const random = prng(14);
    for (let round = 0; round < 50; round++) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < wire.length; ) {
        const size = 1 + randomInt(random, 40);
        chunks.push(wire.subarray(at, at + size));
        at += size;
      }
      expect(feed(new FrameParser(CHECKING), chunks)).toEqual({ frames: [`TEXT:${Buffer.from(text).toString('hex')}`] });
    }
  });

  it('leaves text alone without the option, binary always, and compressed (RSV1) messages with their continuations', () => {
    const bad = bytes(0x61, 0xff, 0x62);
    const split = (wire: Buffer) => [wire.subarray(0, HEADER + 2), wire.subarray(HEADER + 2)];
    expect(feed(new FrameParser(SERVER), split(masked(0x1, bad)))).toEqual({ frames: ['TEXT:61ff62'] });
    expect(feed(new FrameParser(CHECKING), split(masked(0x2, bad)))).toEqual({ frames: ['BINARY:61ff62'] });
    const deflate = new FrameParser({ ...CHECKING, allowedRsv: 4 });
    expect(feed(deflate, [...split(masked(0x1, bad, false, 4)), ...split(masked(0x0, bad))])).toEqual({ frames: ['TEXT:61ff62', 'TEXT:61ff62'] });
  });
});
