import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPOSITORY, requireBuilt } from '../support/server-process.js';
import { naiveMask, prng, randomBytes, randomInt } from './helpers.js';
import { MASK_IMPLEMENTATIONS } from './mask-implementations.js';

const RFC_KEY = Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]);

describe.each(MASK_IMPLEMENTATIONS)('masking with %s', (_name, applyMask) => {
  it('masks "Hello" as in RFC 6455 §5.7 (0x7f 0x9f 0x4d 0x51 0x58)', () => {
    const data = Buffer.from('Hello');
    applyMask(data, RFC_KEY);
    expect([...data]).toEqual([0x7f, 0x9f, 0x4d, 0x51, 0x58]);
  });

  it('unmasks the RFC 6455 §5.7 masked "Hello"', () => {
    const data = Uint8Array.from([0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    applyMask(data, RFC_KEY);
    expect(Buffer.from(data).toString('utf8')).toBe('Hello');
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])('length %i matches octet i XOR key[i mod 4] (tail handling)', (length) => {
    const data = Uint8Array.from({ length }, (_, i) => (i * 37 + 11) & 0xff);
    const key = Uint8Array.from([0x01, 0x80, 0xfe, 0x5a]);
    const expected = [...naiveMask(data, key)];
    applyMask(data, key);
    expect([...data]).toEqual(expected);
  });

  it('length 9 against values worked out by hand', () => {
    // key 01 02 04 08 on bytes 00..08: 00^01 01^02 02^04 03^08 04^01 05^02 06^04 07^08 08^01
    const data = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    applyMask(data, Uint8Array.from([0x01, 0x02, 0x04, 0x08]));
    expect([...data]).toEqual([0x01, 0x03, 0x06, 0x0b, 0x05, 0x07, 0x02, 0x0f, 0x09]);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7, 401])('keyOffset %i starts at key[offset mod 4]', (offset) => {
    for (const length of [0, 1, 3, 4, 5, 9, 17]) {
      const data = Uint8Array.from({ length }, (_, i) => (i * 91 + 5) & 0xff);
      const expected = [...naiveMask(data, RFC_KEY, offset)];
      applyMask(data, RFC_KEY, offset);
      expect([...data]).toEqual(expected);
    }
  });

  it('keyOffset 1 by hand: "Hello" XOR fa 21 3d 37 fa', () => {
    // H=48^fa=b2, e=65^21=44, l=6c^3d=51, l=6c^37=5b, o=6f^fa=95
    const data = Buffer.from('Hello');
    applyMask(data, RFC_KEY, 1);
    expect([...data]).toEqual([0xb2, 0x44, 0x51, 0x5b, 0x95]);
  });

  it('masking a payload in two pieces with keyOffset equals masking it whole', () => {
    const rand = prng(42);
    for (let run = 0; run < 200; run++) {
      const data = randomBytes(rand, randomInt(rand, 40));
      const key = randomBytes(rand, 4);
      const cut = randomInt(rand, data.length + 1);
      const whole = Buffer.from(data);
      applyMask(whole, key);
      const pieces = Buffer.from(data);
      applyMask(pieces.subarray(0, cut), key, 0);
      applyMask(pieces.subarray(cut), key, cut);
      expect(pieces.toString('hex')).toBe(whole.toString('hex'));
      expect(whole.toString('hex')).toBe(naiveMask(data, key).toString('hex'));
    }
  });

  it('applying the mask twice restores the data', () => {
    const rand = prng(7);
    for (let run = 0; run < 200; run++) {
      const original = randomBytes(rand, randomInt(rand, 64));
      const key = randomBytes(rand, 4);
      const offset = randomInt(rand, 8);
      const data = Buffer.from(original);
      applyMask(data, key, offset);
      if (original.length >= 8 && key.readUInt32BE(0) !== 0) expect(data.equals(original)).toBe(false);
      applyMask(data, key, offset);
      expect(data.equals(original)).toBe(true);
    }
  });

  it('touches only the view it is given, not the bytes around it', () => {
    const backing = Buffer.alloc(16, 0xaa);
    const view = backing.subarray(3, 10); // odd offset, 7 bytes
    applyMask(view, Uint8Array.from([0xff, 0xff, 0xff, 0xff]));
    expect([...backing]).toEqual([0xaa, 0xaa, 0xaa, ...Array(7).fill(0x55), ...Array(6).fill(0xaa)]);
  });

  it('a zero key leaves data unchanged', () => {
    const data = Buffer.from('unchanged');
    applyMask(data, new Uint8Array(4));
    expect(data.toString()).toBe('unchanged');
  });

  it.each([63, 64, 65, 255, 256, 257, 1000, 4099])('length %i at every view alignment and key offset matches the RFC formula', (length) => {
    const key = Uint8Array.from([0x9c, 0x03, 0x5e, 0xe1]);
    for (let start = 0; start < 8; start++) {
      for (let offset = 0; offset < 4; offset++) {
        const backing = Buffer.alloc(length + 16, 0xcc);
        const view = backing.subarray(start, start + length);
        for (let i = 0; i < length; i++) view[i] = (i * 13 + start) & 0xff;
        const expected = naiveMask(view, key, offset);
        applyMask(view, key, offset);
        expect(view.equals(expected)).toBe(true);
        expect(backing.subarray(0, start).every((byte) => byte === 0xcc)).toBe(true);
        expect(backing.subarray(start + length).every((byte) => byte === 0xcc)).toBe(true);
      }
    }
  });
});

describe('the switch to the JavaScript fallback (NEST_WEBSOCKET_ROUTES_NO_BUFFERUTIL)', () => {
  /** What a fresh Node process running the built library masks with, under the given switch. */
  function implementationInChild(noBufferUtil: string | undefined): string {
    requireBuilt([{ sources: 'lib/protocol', output: 'dist/protocol' }]);
    const masking = pathToFileURL(join(REPOSITORY, 'dist/protocol/masking.js')).href;
    const env = { ...process.env, NEST_WEBSOCKET_ROUTES_NO_BUFFERUTIL: noBufferUtil };
    if (noBufferUtil === undefined) delete env.NEST_WEBSOCKET_ROUTES_NO_BUFFERUTIL;
    const program = `import { maskingImplementation } from ${JSON.stringify(masking)}; process.stdout.write(maskingImplementation());`;
    return execFileSync(process.execPath, ['--input-type=module', '-e', program], { env, encoding: 'utf8' });
  }

  it('without it, a process with bufferutil installed masks with bufferutil', () => {
    expect(implementationInChild(undefined)).toBe('bufferutil');
  });

  it('set to 1, the process masks in JavaScript', () => {
    expect(implementationInChild('1')).toBe('javascript');
  });
});
