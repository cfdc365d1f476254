/**
 * Property tests for the codec (issue 4, "Fuzzing"): fast-check generates
 * frame sequences, masks, chunkings and byte strings; each property states
 * what must hold for all of them. A failure prints the seed and the shrunk
 * counterexample. Expected bytes come from helpers.ts (written from the RFC,
 * sharing no code with lib/protocol) and from TextDecoder.
 */
import * as fc from 'fast-check';
import { Frame } from '../../lib/protocol/frame.js';
import { FrameParser, type FrameParserOptions } from '../../lib/protocol/frame-parser.js';
import { FrameSerializer } from '../../lib/protocol/frame-serializer.js';
import { FrameType } from '../../lib/protocol/frame-type.js';
import { WebSocketProtocolError } from '../../lib/protocol/protocol-error.js';
import { isValidUtf8, Utf8Validator } from '../../lib/protocol/utf8-validator.js';
import { catchError, drain, naiveMask, prng, randomBytes, view, wireFrame, type FrameView } from './helpers.js';
import { MASK_IMPLEMENTATIONS } from './mask-implementations.js';

// ---------------------------------------------------------------------------
// Model: a stream is a list of frames as written; each knows the frame the parser must give back.

const TYPE_NAME: Record<number, string> = { 1: 'TEXT', 2: 'BINARY', 8: 'CLOSE', 9: 'PING', 10: 'PONG' };

interface WrittenFrame {
  /** Opcode on the wire: 0 for a continuation. */
  wireOpcode: number;
  /** Opcode of the frame's type (a continuation's is its message's). */
  typeOpcode: number;
  fin: boolean;
  rsv: number;
  payload: Buffer;
}

function expectedView(frame: WrittenFrame): FrameView {
  return {
    type: TYPE_NAME[frame.typeOpcode],
    opcode: frame.typeOpcode,
    fin: frame.fin,
    rsv: [(frame.rsv & 4) !== 0, (frame.rsv & 2) !== 0, (frame.rsv & 1) !== 0],
    hex: frame.payload.toString('hex'),
  };
}

/** Lengths on both sides of the 7-bit / 16-bit / 64-bit length encodings. */
const BOUNDARY_LENGTHS = [0, 1, 124, 125, 126, 127, 128, 255, 256, 65535, 65536, 65537];

/** Bytes of a given length from a seed: generating 64 KiB element by element would be slow. */
const payloadArb = (length: fc.Arbitrary<number>) =>
  fc.tuple(length, fc.integer()).map(([n, seed]) => randomBytes(prng(seed), n));

const dataPayloadArb = payloadArb(
  fc.oneof(
    { weight: 10, arbitrary: fc.nat({ max: 140 }) },
    { weight: 3, arbitrary: fc.integer({ min: 126, max: 3000 }) },
    { weight: 2, arbitrary: fc.constantFrom(...BOUNDARY_LENGTHS) },
  ),
);
const controlPayloadArb = payloadArb(fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 125 }) }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 2, 124, 125) }));

const controlFrameArb: fc.Arbitrary<WrittenFrame> = fc
  .tuple(fc.constantFrom(0x8, 0x9, 0xa), controlPayloadArb)
  .map(([opcode, payload]) => ({ wireOpcode: opcode, typeOpcode: opcode, fin: true, rsv: 0, payload }));

/** One data message, 1 to 4 fragments, with 0 to 2 control frames between fragments. RSV bits are masked later. */
const messageArb: fc.Arbitrary<WrittenFrame[]> = fc
  .tuple(
    fc.constantFrom(0x1, 0x2),
    fc.array(
      fc.record({ payload: dataPayloadArb, rsv: fc.integer({ min: 0, max: 7 }), between: fc.array(controlFrameArb, { maxLength: 2 }) }),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([opcode, fragments]) => {
    const frames: WrittenFrame[] = [];
    fragments.forEach((fragment, i) => {
      const last = i === fragments.length - 1;
      frames.push({ wireOpcode: i === 0 ? opcode : 0, typeOpcode: opcode, fin: last, rsv: fragment.rsv, payload: fragment.payload });
      if (!last) frames.push(...fragment.between);
    });
    return frames;
  });

/** A stream: messages and lone control frames, in any order. */
const streamArb: fc.Arbitrary<WrittenFrame[]> = fc
  .array(fc.oneof({ weight: 3, arbitrary: messageArb }, { weight: 1, arbitrary: controlFrameArb.map((frame) => [frame]) }), {
    minLength: 1,
    maxLength: 6,
  })
  .map((parts) => parts.flat());

/** Keeps only the RSV bits the parser is told an extension negotiated. */
const withAllowedRsv = (frames: WrittenFrame[], allowedRsv: number) => frames.map((frame) => ({ ...frame, rsv: frame.rsv & allowedRsv }));

/** How to cut a byte stream: byte by byte (short streams only), or at arbitrary points. */
type Chunking = { bytewise: boolean; cuts: number[] };
const chunkingArb: fc.Arbitrary<Chunking> = fc.record({
  bytewise: fc.boolean(),
  cuts: fc.array(fc.nat(), { maxLength: 24 }),
});

const BYTEWISE_LIMIT = 4096;

function cut(bytes: Buffer, chunking: Chunking): Buffer[] {
  if (chunking.bytewise && bytes.length <= BYTEWISE_LIMIT) {
    return Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
  }
  const points = [...new Set(chunking.cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, point)); // empty chunks included: push must ignore them
    from = point;
  }
  return chunks;
}

/** The outcome of feeding chunks: the frames handed out, and the protocol error if one was thrown. */
interface Outcome {
  frames: FrameView[];
  error?: { closeCode: number };
}

/** Pushes private copies (the parser unmasks in place) and drains after each push; only protocol errors are caught. */
function feed(options: FrameParserOptions, chunks: Buffer[]): Outcome {
  const parser = new FrameParser(options);
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    parser.push(Buffer.from(chunk));
    const error = catchError(() => drain(parser, frames));
    if (error !== undefined) {
      if (!(error instanceof WebSocketProtocolError)) throw error;
      return { frames: frames.map(view), error: { closeCode: error.closeCode } };
    }
  }
  return { frames: frames.map(view) };
}

function toFrame(frame: WrittenFrame): Frame {
  const type = FrameType.get(frame.typeOpcode)!;
  return Frame.byType(type, frame.fin, Buffer.from(frame.payload), (frame.rsv & 4) !== 0, (frame.rsv & 2) !== 0, (frame.rsv & 1) !== 0);
}

const keyArb = fc.uint8Array({ minLength: 4, maxLength: 4 });

const RUNS = 100;

// ---------------------------------------------------------------------------

describe('FrameParser property: the parser yields exactly the frames written', () => {
  it('masked client streams (requireMask), any RSV the extension allows, any chunking', () => {
    fc.assert(
      fc.property(streamArb, fc.integer({ min: 0, max: 7 }), fc.array(keyArb, { minLength: 40, maxLength: 40 }), chunkingArb, (stream, allowedRsv, keys, chunking) => {
        const frames = withAllowedRsv(stream, allowedRsv);
        const wire = Buffer.concat(
          frames.map((frame, i) => wireFrame({ fin: frame.fin, rsv: frame.rsv, opcode: frame.wireOpcode, payload: frame.payload, mask: keys[i % keys.length] })),
        );
        const outcome = feed({ maxFrameSize: 1 << 20, requireMask: true, allowedRsv }, cut(wire, chunking));
        expect(outcome).toEqual({ frames: frames.map(expectedView) });
      }),
      { numRuns: RUNS },
    );
  });

  it('unmasked and mixed streams with requireMask off, any chunking', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.option(keyArb), { minLength: 40, maxLength: 40 }), chunkingArb, (stream, keys, chunking) => {
        const frames = withAllowedRsv(stream, 0);
        const wire = Buffer.concat(
          frames.map((frame, i) =>
            wireFrame({ fin: frame.fin, opcode: frame.wireOpcode, payload: frame.payload, mask: keys[i % keys.length] ?? undefined }),
          ),
        );
        const outcome = feed({ maxFrameSize: 1 << 20, requireMask: false }, cut(wire, chunking));
        expect(outcome).toEqual({ frames: frames.map(expectedView) });
      }),
      { numRuns: RUNS },
    );
  });

  it('maxFrameSize: the frames before the first oversized one, then 1009, whatever the chunking', () => {
    fc.assert(
      fc.property(streamArb, fc.nat({ max: 2000 }), chunkingArb, (stream, maxFrameSize, chunking) => {
        const frames = withAllowedRsv(stream, 0);
        const wire = Buffer.concat(frames.map((frame) => wireFrame({ fin: frame.fin, opcode: frame.wireOpcode, payload: frame.payload, mask: [1, 2, 3, 4] })));
        const firstTooBig = frames.findIndex((frame) => frame.payload.length > maxFrameSize);
        const outcome = feed({ maxFrameSize, requireMask: true }, cut(wire, chunking));
        if (firstTooBig < 0) expect(outcome).toEqual({ frames: frames.map(expectedView) });
        else expect(outcome).toEqual({ frames: frames.slice(0, firstTooBig).map(expectedView), error: { closeCode: 1009 } });
      }),
      { numRuns: RUNS },
    );
  });
});

describe('FrameSerializer ∘ FrameParser is the identity', () => {
  it('masked as a client sends, parsed with requireMask; payloads of the given frames untouched', () => {
    fc.assert(
      fc.property(streamArb, chunkingArb, (stream, chunking) => {
        const frames = withAllowedRsv(stream, 7);
        const models = frames.map(toFrame);
        const serializer = new FrameSerializer({ masking: true });
        const wire = Buffer.concat(models.flatMap((frame) => serializer.serialize(frame)));
        const outcome = feed({ maxFrameSize: 1 << 20, requireMask: true, allowedRsv: 7 }, cut(wire, chunking));
        expect(outcome).toEqual({ frames: frames.map(expectedView) });
        expect(models.map(view)).toEqual(frames.map(expectedView)); // masking worked on a copy
      }),
      { numRuns: RUNS },
    );
  });

  it('unmasked as a server sends: byte for byte the RFC encoding, and parsed back with requireMask off', () => {
    fc.assert(
      fc.property(streamArb, chunkingArb, (stream, chunking) => {
        const frames = withAllowedRsv(stream, 7);
        const serializer = new FrameSerializer();
        const wire = Buffer.concat(frames.map(toFrame).flatMap((frame) => serializer.serialize(frame)));
        const reference = Buffer.concat(frames.map((frame) => wireFrame({ fin: frame.fin, rsv: frame.rsv, opcode: frame.wireOpcode, payload: frame.payload })));
        expect(wire.equals(reference)).toBe(true);
        const outcome = feed({ maxFrameSize: 1 << 20, requireMask: false, allowedRsv: 7 }, cut(wire, chunking));
        expect(outcome).toEqual({ frames: frames.map(expectedView) });
      }),
      { numRuns: RUNS },
    );
  });
});

describe('FrameParser property: hostile bytes', () => {
  const PROTOCOL_CODES = [1002, 1009];

  /** A valid masked stream with a few bytes overwritten, flipped, cut short or spliced in. */
  const mutatedStreamArb = fc
    .tuple(
      streamArb,
      fc.array(
        fc.record({ kind: fc.constantFrom('flip', 'set', 'insert', 'delete'), at: fc.nat(), value: fc.nat({ max: 255 }) }),
        { minLength: 1, maxLength: 4 },
      ),
      fc.option(fc.nat()),
    )
    .map(([stream, mutations, truncateAt]) => {
      const frames = withAllowedRsv(stream, 0);
      let bytes = Buffer.concat(frames.map((frame) => wireFrame({ fin: frame.fin, opcode: frame.wireOpcode, payload: frame.payload, mask: [9, 8, 7, 6] })));
      for (const { kind, at, value } of mutations) {
        // Mutations favour the headers: most of the interesting damage is there.
        const i = bytes.length === 0 ? 0 : (at % 3 === 0 ? at : at % 16) % bytes.length;
        if (kind === 'flip' && bytes.length > 0) bytes[i] ^= 1 << (value & 7);
        else if (kind === 'set' && bytes.length > 0) bytes[i] = value;
        else if (kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, i), Buffer.of(value), bytes.subarray(i)]);
        else if (kind === 'delete') bytes = Buffer.concat([bytes.subarray(0, i), bytes.subarray(i + 1)]);
      }
      return truncateAt === null ? bytes : bytes.subarray(0, truncateAt % (bytes.length + 1));
    });

  const anyBytesArb = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    mutatedStreamArb,
  );

  it('random and mutated streams: frames or a WebSocketProtocolError (1002/1009), never another exception; chunking does not change the outcome', () => {
    fc.assert(
      fc.property(anyBytesArb, fc.boolean(), fc.constantFrom(0, 125, 1000, 1 << 20), fc.integer({ min: 0, max: 7 }), chunkingArb, (bytes, requireMask, maxFrameSize, allowedRsv, chunking) => {
        const options = { maxFrameSize, requireMask, allowedRsv };
        const whole = feed(options, [bytes]); // throws (failing the property) on anything but a protocol error
        const chunked = feed(options, cut(bytes, chunking));
        expect(chunked).toEqual(whole);
        if (whole.error) expect(PROTOCOL_CODES).toContain(whole.error.closeCode);
      }),
      { numRuns: 400 },
    );
  });

  /** One frame that breaks one parser rule, and the close code it must get. */
  const violationArb: fc.Arbitrary<{ name: string; bytes: Buffer; options: FrameParserOptions; closeCode: number }> = fc.oneof(
    fc
      .tuple(fc.constantFrom(0x8, 0x9, 0xa), fc.oneof(fc.integer({ min: 126, max: 300 }), fc.constantFrom(126, 65535, 65536)), keyArb)
      .map(([opcode, length, mask]) => ({ name: 'control frame over 125 bytes', bytes: wireFrame({ opcode, payload: Buffer.alloc(length), mask }), options: { maxFrameSize: 1 << 20, requireMask: true }, closeCode: 1002 })),
    fc
      .tuple(fc.constantFrom(0x8, 0x9, 0xa), keyArb)
      .map(([opcode, mask]) => ({ name: 'fragmented control frame', bytes: wireFrame({ opcode, fin: false, mask }), options: { maxFrameSize: 1 << 20, requireMask: true }, closeCode: 1002 })),
    fc
      .tuple(fc.constantFrom(3, 4, 5, 6, 7, 11, 12, 13, 14, 15), keyArb)
      .map(([opcode, mask]) => ({ name: `reserved opcode ${opcode}`, bytes: wireFrame({ opcode, mask }), options: { maxFrameSize: 1 << 20, requireMask: true }, closeCode: 1002 })),
    fc
      .tuple(fc.constantFrom(0x1, 0x2, 0x8, 0x9, 0xa), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 6 }), keyArb)
      .filter(([, rsv, allowed]) => (rsv & ~allowed) !== 0)
      .map(([opcode, rsv, allowedRsv, mask]) => ({ name: 'RSV bit not negotiated', bytes: wireFrame({ opcode, rsv, mask }), options: { maxFrameSize: 1 << 20, requireMask: true, allowedRsv }, closeCode: 1002 })),
    fc
      .constantFrom(0x1, 0x2, 0x8, 0x9, 0xa)
      .map((opcode) => ({ name: 'unmasked client frame', bytes: wireFrame({ opcode }), options: { maxFrameSize: 1 << 20, requireMask: true }, closeCode: 1002 })),
    keyArb.map((mask) => ({ name: 'continuation without a message', bytes: wireFrame({ opcode: 0, mask }), options: { maxFrameSize: 1 << 20, requireMask: true }, closeCode: 1002 })),
  );

  it('a valid stream, then one frame breaking one rule: the stream\'s frames, then exactly that rule\'s close code, whatever the chunking', () => {
    fc.assert(
      fc.property(streamArb, violationArb, chunkingArb, (stream, violation, chunking) => {
        const frames = withAllowedRsv(stream, 0);
        const wire = Buffer.concat([...frames.map((frame) => wireFrame({ fin: frame.fin, opcode: frame.wireOpcode, payload: frame.payload, mask: [5, 6, 7, 8] })), violation.bytes]);
        const outcome = feed(violation.options, cut(wire, chunking));
        expect(outcome).toEqual({ frames: frames.map(expectedView), error: { closeCode: violation.closeCode } });
      }),
      { numRuns: RUNS },
    );
  });

  it('bogus 64-bit lengths up to 2^63-1 fail at the header (1002 or 1009) without allocating the payload', () => {
    const bigLength = fc.oneof(
      fc.constantFrom(2n ** 62n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 2n ** 53n, 2n ** 53n - 1n, 2n ** 32n, 2n ** 31n),
      fc.bigInt({ min: 1n << 21n, max: (1n << 64n) - 1n }),
    );
    fc.assert(
      fc.property(bigLength, fc.constantFrom(0x1, 0x2), fc.boolean(), (length, opcode, masked) => {
        const header = Buffer.alloc(10);
        header[0] = 0x80 | opcode;
        header[1] = (masked ? 0x80 : 0) | 127;
        header.writeBigUInt64BE(length, 2);
        const parser = new FrameParser({ maxFrameSize: 1 << 20, requireMask: false });
        parser.push(Buffer.concat([header, Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])]));
        const error = catchError(() => parser.next());
        expect(error).toBeInstanceOf(WebSocketProtocolError);
        expect((error as WebSocketProtocolError).closeCode).toBe(length >= 2n ** 63n ? 1002 : 1009);
      }),
      { numRuns: 200 },
    );
  });

  it('control frames with an RSV bit an extension allows are rejected (1002) or keep their bits, never silently cleared', () => {
    // No extension defines RSV bits on control frames; permessage-deflate
    // (RFC 7692 §6) requires failing the connection on RSV1 there. A parser
    // that clears them hides the violation from the extension layer.
    fc.assert(
      fc.property(fc.constantFrom(0x8, 0x9, 0xa), fc.integer({ min: 1, max: 7 }), controlPayloadArb, (opcode, rsv, payload) => {
        const outcome = feed({ maxFrameSize: 1 << 20, requireMask: true, allowedRsv: 7 }, [wireFrame({ opcode, rsv, payload, mask: [1, 2, 3, 4] })]);
        if (outcome.error) expect(outcome).toEqual({ frames: [], error: { closeCode: 1002 } });
        else expect(outcome).toEqual({ frames: [expectedView({ wireOpcode: opcode, typeOpcode: opcode, fin: true, rsv, payload })] });
      }),
      { numRuns: 50 },
    );
  });
});

describe.each(MASK_IMPLEMENTATIONS)('masking properties with %s', (_name, applyMask) => {
  // Up to past the native threshold (256 bytes), so applyMask takes both of its paths.
  const dataArb = fc.uint8Array({ maxLength: 700 });

  it('masking twice restores the data, for any key and key offset', () => {
    fc.assert(
      fc.property(dataArb, keyArb, fc.nat({ max: 7 }), (data, key, offset) => {
        const copy = Buffer.from(data);
        applyMask(copy, key, offset);
        expect(copy.equals(naiveMask(data, key, offset))).toBe(true);
        applyMask(copy, key, offset);
        expect(copy.equals(Buffer.from(data))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('masking in pieces, each with keyOffset = bytes before it, equals masking the whole', () => {
    fc.assert(
      fc.property(dataArb, keyArb, fc.array(fc.nat(), { maxLength: 6 }), (data, key, cuts) => {
        const whole = Buffer.from(data);
        applyMask(whole, key);
        const pieces = Buffer.from(data);
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        let from = 0;
        for (const point of [...points, data.length]) {
          applyMask(pieces.subarray(from, point), key, from);
          from = point;
        }
        expect(pieces.equals(whole)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('Utf8Validator agrees with TextDecoder (fatal)', () => {
  const oracle = (bytes: Uint8Array) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return true;
    } catch {
      return false;
    }
  };

  /** Feeds the chunks; for each, whether the validator still accepts, then the final verdict. */
  function validate(chunks: Uint8Array[]): { perChunk: boolean[]; valid: boolean } {
    const validator = new Utf8Validator();
    const perChunk = chunks.map((chunk) => validator.update(chunk));
    return { perChunk, valid: perChunk.every(Boolean) && validator.finish() };
  }

  /** The streaming oracle: TextDecoder with stream: true throws at the first byte no continuation can fix. */
  function oracleStream(chunks: Uint8Array[]): { perChunk: boolean[]; valid: boolean } {
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let ok = true;
    const perChunk = chunks.map((chunk) => {
      if (ok) {
        try {
          decoder.decode(chunk, { stream: true });
        } catch {
          ok = false;
        }
      }
      return ok;
    });
    let valid = ok;
    if (ok) {
      try {
        decoder.decode();
      } catch {
        valid = false;
      }
    }
    return { perChunk, valid };
  }

  /** Bytes that are often nearly UTF-8: encoded text with a few bytes changed, or raw high bytes. */
  /** Lead and continuation bytes at the DFA's range edges (overlongs, surrogates, above U+10FFFF, cut short). */
  const EDGE_BYTES = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff];
  const nearlyUtf8Arb = fc.oneof(
    fc.uint8Array({ maxLength: 40 }).map((bytes) => Buffer.from(bytes)),
    fc.array(fc.constantFrom(...EDGE_BYTES), { maxLength: 10 }).map((bytes) => Buffer.from(bytes)),
    fc.array(fc.integer({ min: 0x80, max: 0xff }), { maxLength: 12 }).map((bytes) => Buffer.from(bytes)),
    fc
      .tuple(fc.string({ unit: 'binary', maxLength: 20 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { maxLength: 3 }))
      .map(([text, edits]) => {
        const bytes = Buffer.from(text, 'utf8');
        for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return bytes;
      }),
  );

  const splitArb = (bytes: Buffer) =>
    fc.array(fc.nat({ max: bytes.length }), { maxLength: 6 }).map((cuts) => {
      const points = [...cuts].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let from = 0;
      for (const point of [...points, bytes.length]) {
        chunks.push(bytes.subarray(from, point));
        from = point;
      }
      return chunks;
    });

  it('arbitrary bytes, whole: update + finish and isValidUtf8 give the oracle verdict', () => {
    fc.assert(
      fc.property(nearlyUtf8Arb, (bytes) => {
        const expected = oracle(bytes);
        expect(validate([bytes]).valid).toBe(expected);
        expect(isValidUtf8(bytes)).toBe(expected);
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary bytes split anywhere: the same verdict, failing at the same chunk as the streaming oracle', () => {
    fc.assert(
      fc.property(nearlyUtf8Arb.chain((bytes) => splitArb(bytes)), (chunks) => {
        expect(validate(chunks)).toEqual(oracleStream(chunks));
      }),
      { numRuns: 2000 },
    );
  });

  it('arbitrary strings split at arbitrary byte points (inside characters too) are valid', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 })).chain((text) => splitArb(Buffer.from(text, 'utf8'))),
        (chunks) => {
          expect(validate(chunks)).toEqual({ perChunk: chunks.map(() => true), valid: true });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a string cut short inside a multi-byte character: every update accepts, finish does not', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }), (text) => {
        const bytes = Buffer.from(text, 'utf8');
        fc.pre(Buffer.byteLength([...text].pop()!, 'utf8') > 1);
        const truncated = bytes.subarray(0, bytes.length - 1);
        expect(validate([truncated])).toEqual({ perChunk: [true], valid: false });
        expect(oracle(truncated)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
