import { isValidUtf8, Utf8Validator } from '../../lib/protocol/utf8-validator.js';
import { prng, randomInt } from './helpers.js';

/** The independent oracle: WHATWG's decoder in Node, fatal on any error (a non-streaming decode starts afresh). */
const decoder = new TextDecoder('utf-8', { fatal: true });
function oracleValid(bytes: Uint8Array): boolean {
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether some continuation makes this prefix valid, by the oracle. A valid
 * completion only ever needs up to three continuation bytes, and every
 * second-byte range in RFC 3629 is a union of 80-8F, 90-9F and A0-BF, so
 * 0x80, 0x90 and 0xA0 as representatives cover every case.
 */
const REPS = [0x80, 0x90, 0xa0];
const TAILS: Buffer[] = [Buffer.alloc(0)];
for (const a of REPS) {
  TAILS.push(Buffer.from([a]));
  for (const b of REPS) {
    TAILS.push(Buffer.from([a, b]));
    for (const c of REPS) TAILS.push(Buffer.from([a, b, c]));
  }
}
function oracleViablePrefix(prefix: Uint8Array): boolean {
  return TAILS.some((tail) => oracleValid(Buffer.concat([prefix, tail])));
}

/** Length of the shortest prefix that no continuation can make valid; -1 when all are viable. */
function oracleFirstBadLength(bytes: Uint8Array): number {
  // Viability is monotone (a non-viable prefix stays non-viable), so binary search.
  if (oracleValid(bytes) || oracleViablePrefix(bytes)) return -1;
  let lo = 0; // viable
  let hi = bytes.length; // not viable
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (oracleViablePrefix(bytes.subarray(0, mid))) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * The same position by the WHATWG streaming decoder, which reports an error on
 * the first byte outside the allowed range (Encoding Standard, UTF-8 decoder):
 * fed byte by byte with {stream: true}, the first decode that throws.
 */
function streamingOracleFirstBad(bytes: Uint8Array): number {
  const streaming = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < bytes.length; i++) {
    try {
      streaming.decode(bytes.subarray(i, i + 1), { stream: true });
    } catch {
      return i + 1;
    }
  }
  return -1;
}

/** Feeds byte by byte; the 1-based position where update first returned false, or -1. */
function firstFalseUpdate(bytes: Uint8Array): { at: number; finish: boolean } {
  const validator = new Utf8Validator();
  let at = -1;
  for (let i = 0; i < bytes.length; i++) {
    if (!validator.update(bytes.subarray(i, i + 1)) && at === -1) at = i + 1;
  }
  return { at, finish: validator.finish() };
}

function validateChunks(chunks: Uint8Array[]): boolean {
  const validator = new Utf8Validator();
  let ok = true;
  for (const chunk of chunks) ok = validator.update(chunk) && ok;
  return validator.finish() && ok;
}

describe('Utf8Validator: valid text split anywhere', () => {
  const samples: Array<[string, number[]]> = [
    ['\u03ba\u1f79\u03c3\u03bc\u03b5 (2- and 3-byte)', [0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5]],
    ['€ (3-byte)', [0xe2, 0x82, 0xac]],
    ['𝄞 (4-byte)', [0xf0, 0x9d, 0x84, 0x9e]],
    ['U+0000', [0x00]],
    ['U+007F, U+0080, U+07FF, U+0800', [0x7f, 0xc2, 0x80, 0xdf, 0xbf, 0xe0, 0xa0, 0x80]],
    ['U+D7FF, U+E000, U+FFFF', [0xed, 0x9f, 0xbf, 0xee, 0x80, 0x80, 0xef, 0xbf, 0xbf]],
    ['U+10000, U+10FFFF', [0xf0, 0x90, 0x80, 0x80, 0xf4, 0x8f, 0xbf, 0xbf]],
  ];

  it('the hand-written byte samples are what the oracle calls valid', () => {
    for (const [, bytes] of samples) expect(oracleValid(Uint8Array.from(bytes))).toBe(true);
    expect(Buffer.from(samples[0][1]).toString('utf8')).toBe('\u03ba\u1f79\u03c3\u03bc\u03b5'); // Kuhn's κόσμε, U+1F79
    expect(Buffer.from(samples[1][1]).toString('utf8')).toBe('€');
    expect(Buffer.from(samples[2][1]).toString('utf8')).toBe('𝄞');
  });

  it.each(samples)('%s: every two-way split validates, update and finish true', (_name, list) => {
    const bytes = Uint8Array.from([0x61, ...list, 0x7a]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const validator = new Utf8Validator();
      expect(validator.update(bytes.subarray(0, cut))).toBe(true);
      expect(validator.update(bytes.subarray(cut))).toBe(true);
      expect(validator.failed).toBe(false);
      expect(validator.finish()).toBe(true);
    }
  });

  it.each(samples)('%s: byte by byte, every update true and finish true', (_name, list) => {
    expect(firstFalseUpdate(Uint8Array.from(list))).toEqual({ at: -1, finish: true });
  });

  it('a mixed text split at every pair of positions', () => {
    const bytes = Buffer.from('aκ€𝄞b€𝄞κ', 'utf8');
    for (let a = 0; a <= bytes.length; a++) {
      for (let b = a; b <= bytes.length; b++) {
        expect(validateChunks([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)])).toBe(true);
      }
    }
  });

  it('long chunks of non-ASCII text, each stopping inside a character, validate', () => {
    const bytes = Buffer.from('κόσμε €𝄞 '.repeat(5000), 'utf8');
    for (const size of [4095, 4096, 4097, 65538]) {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
      expect(chunks.some((chunk) => !isValidUtf8(chunk))).toBe(true);
      expect(validateChunks(chunks)).toBe(true);
      const broken = Buffer.from(bytes);
      broken[broken.length - 2000] = 0xff;
      const brokenChunks: Buffer[] = [];
      for (let at = 0; at < broken.length; at += size) brokenChunks.push(broken.subarray(at, at + size));
      expect(validateChunks(brokenChunks)).toBe(false);
    }
  });

  it('a chunk ending mid-character is not complete until the rest comes', () => {
    const validator = new Utf8Validator();
    expect(validator.update(Uint8Array.from([0xf0, 0x9d]))).toBe(true);
    expect(validator.finish()).toBe(false);
  });
});

describe('Utf8Validator: invalid sequences fail at the first bad byte', () => {
  // [name, bytes, 1-based position of the first byte no valid text can have there]
  const cases: Array<[string, number[], number]> = [
    ['overlong "/" C0 AF', [0xc0, 0xaf], 1],
    ['overlong C1 BF', [0xc1, 0xbf], 1],
    ['overlong 3-byte E0 80 AF', [0xe0, 0x80, 0xaf], 2],
    ['overlong 4-byte F0 80 80 AF', [0xf0, 0x80, 0x80, 0xaf], 2],
    ['surrogate U+D800 ED A0 80', [0xed, 0xa0, 0x80], 2],
    ['surrogate U+DFFF ED BF BF', [0xed, 0xbf, 0xbf], 2],
    ['above U+10FFFF F4 90 80 80', [0xf4, 0x90, 0x80, 0x80], 2],
    ['F5 lead', [0xf5, 0x80, 0x80, 0x80], 1],
    ['FF byte', [0xff], 1],
    ['lone continuation 80', [0x80], 1],
    ['lone continuation after text', [0x61, 0x62, 0xbf], 3],
    ['lead then ASCII', [0xc3, 0x41], 2],
    ['3-byte lead cut by ASCII', [0xe2, 0x82, 0x41], 3],
    ['valid then overlong', [0xce, 0xba, 0xc0, 0xaf], 3],
    ['too many continuations', [0xe2, 0x82, 0xac, 0xac], 4],
  ];

  it.each(cases)('%s: rejected whole', (_name, list) => {
    const bytes = Uint8Array.from(list);
    expect(oracleValid(bytes)).toBe(false);
    const validator = new Utf8Validator();
    expect(validator.update(bytes) && validator.finish()).toBe(false);
    expect(isValidUtf8(bytes)).toBe(false);
  });

  it.each(cases)('%s: update returns false on the bad byte itself when fed byte by byte', (_name, list, at) => {
    const bytes = Uint8Array.from(list);
    // The hand-written position agrees with both oracles.
    expect(oracleFirstBadLength(bytes)).toBe(at);
    expect(streamingOracleFirstBad(bytes)).toBe(at);
    expect(firstFalseUpdate(bytes)).toEqual({ at, finish: false });
  });

  it('stays failed after the bad byte, even if valid bytes follow', () => {
    const validator = new Utf8Validator();
    expect(validator.update(Uint8Array.from([0xc0]))).toBe(false);
    expect(validator.failed).toBe(true);
    expect(validator.update(Buffer.from('fine'))).toBe(false);
    expect(validator.failed).toBe(true);
    expect(validator.finish()).toBe(false);
  });

  it.each([
    ['2-byte', [0xce]],
    ['3-byte', [0xe2, 0x82]],
    ['4-byte', [0xf0, 0x9d, 0x84]],
  ])('a %s sequence truncated at the end: every update true, finish false', (_name, list) => {
    expect(firstFalseUpdate(Uint8Array.from([0x61, ...list]))).toEqual({ at: -1, finish: false });
    expect(isValidUtf8(Uint8Array.from(list))).toBe(false);
  });

  it('finish resets the validator for the next message', () => {
    const validator = new Utf8Validator();
    validator.update(Uint8Array.from([0xe2, 0x82]));
    expect(validator.finish()).toBe(false);
    expect(validator.update(Uint8Array.from([0xac]))).toBe(false); // a continuation cannot start a message
    expect(validator.finish()).toBe(false);
    expect(validator.failed).toBe(false);
    expect(validator.update(Buffer.from('€'))).toBe(true);
    expect(validator.finish()).toBe(true);
  });
});

describe('Utf8Validator against TextDecoder (fatal) on random byte strings', () => {
  // Bytes from every class boundary of RFC 3629's table, so random strings hit the edge cases.
  const interesting = [
    0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee,
    0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff,
  ];
  const validText = ['a', 'κ', 'ό', '€', '𝄞', '\u0800', '\uffff', '\u{10ffff}', '\u{10000}', '\u07ff', '\ud7ff', '\ue000'];

  function makeSamples(): Buffer[] {
    const rand = prng(0xc0ffee);
    const samples: Buffer[] = [];
    for (let i = 0; i < 4000; i++) {
      const kind = i % 3;
      if (kind === 0) {
        // Random bytes from the interesting set.
        const length = 1 + randomInt(rand, 12);
        samples.push(Buffer.from(Array.from({ length }, () => interesting[randomInt(rand, interesting.length)])));
      } else {
        // Valid text, sometimes with one byte mutated, dropped or inserted.
        let text = '';
        const count = 1 + randomInt(rand, 6);
        for (let j = 0; j < count; j++) text += validText[randomInt(rand, validText.length)];
        const bytes = [...Buffer.from(text, 'utf8')];
        if (kind === 2) {
          const at = randomInt(rand, bytes.length);
          const op = randomInt(rand, 3);
          const value = rand() < 0.5 ? interesting[randomInt(rand, interesting.length)] : randomInt(rand, 256);
          if (op === 0) bytes[at] = value;
          else if (op === 1) bytes.splice(at, 1);
          else bytes.splice(at, 0, value);
        }
        samples.push(Buffer.from(bytes));
      }
    }
    return samples;
  }

  const samples = makeSamples();

  it('the samples contain both valid and invalid strings in quantity', () => {
    const valid = samples.filter(oracleValid).length;
    expect(valid).toBeGreaterThan(1000);
    expect(samples.length - valid).toBeGreaterThan(1000);
  });

  it('whole, in random chunks, and via isValidUtf8: the same verdict as the oracle', () => {
    const rand = prng(99);
    const split = (bytes: Buffer, maxSize: number) => {
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const size = 1 + randomInt(rand, maxSize);
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      return chunks;
    };
    const mismatches: string[] = [];
    for (const bytes of samples) {
      const expected = oracleValid(bytes);
      // Short chunks, and chunks long enough that most hold whole characters before the one they may stop inside.
      const got = [validateChunks([bytes]), validateChunks(split(bytes, 4)), validateChunks(split(bytes, 16)), isValidUtf8(bytes)];
      if (got.some((verdict) => verdict !== expected)) mismatches.push(`${bytes.toString('hex')}: ${got} vs ${expected}`);
    }
    expect(mismatches).toEqual([]);
  });

  it('the two first-bad-byte oracles agree with each other (on the first 400 samples)', () => {
    const disagreements = samples
      .slice(0, 400)
      .filter((bytes) => oracleFirstBadLength(bytes) !== streamingOracleFirstBad(bytes))
      .map((bytes) => bytes.toString('hex'));
    expect(disagreements).toEqual([]);
  });

  it('byte by byte, update turns false exactly at the first byte no continuation can fix', () => {
    const mismatches: string[] = [];
    for (const bytes of samples) {
      const at = streamingOracleFirstBad(bytes);
      const got = firstFalseUpdate(bytes);
      const expected = { at, finish: oracleValid(bytes) };
      if (got.at !== expected.at || got.finish !== expected.finish) {
        mismatches.push(`${bytes.toString('hex')}: ${JSON.stringify(got)} vs ${JSON.stringify(expected)}`);
      }
    }
    expect(mismatches).toEqual([]);
  });
});
