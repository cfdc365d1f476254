/**
 * RFC 6455 §5.3 masking: XOR with a 4-byte key. The same operation masks and
 * unmasks, in place, so a received payload needs no copy. Payloads from
 * NATIVE_THRESHOLD bytes on go to bufferutil when it is loaded
 * (native-masking.ts); shorter ones, and all of them without it, stay in
 * JavaScript.
 */
import { bufferUtilUnmask, type Unmask } from './native-masking.js';

/** Masks `data` in place; `keyOffset` is how many payload bytes came before it (a payload masked in pieces). */
export type MaskFunction = (data: Uint8Array, maskKey: Uint8Array, keyOffset?: number) => void;

/** From this length on, XOR 32-bit words: four times fewer steps on large payloads. */
const WORD_THRESHOLD = 64;
/**
 * From this length on, bufferutil beats our JavaScript: below it, the cost of calling native code
 * (about 45 ns) outweighs its 64-bit loop. Measured crossover: about 130 bytes on Node 24, 190 on 26.
 */
const NATIVE_THRESHOLD = 256;
const keyBytes = new Uint8Array(4);
const keyWord = new Int32Array(keyBytes.buffer);
const rotatedKey = Buffer.alloc(4);

export function jsMask(data: Uint8Array, maskKey: Uint8Array, keyOffset = 0): void {
  const length = data.length;
  let i = 0;
  if (length >= WORD_THRESHOLD) {
    // Bytes up to a 4-byte boundary of the underlying memory, then words, then the tail.
    const lead = (4 - (data.byteOffset & 3)) & 3;
    for (; i < lead; i++) data[i] ^= maskKey[(keyOffset + i) & 3];
    // The key as a word in the platform's byte order, rotated to where the words start.
    for (let k = 0; k < 4; k++) keyBytes[k] = maskKey[(keyOffset + lead + k) & 3];
    const mask = keyWord[0];
    const words = new Int32Array(data.buffer, data.byteOffset + lead, (length - lead) >>> 2);
    for (let w = 0; w < words.length; w++) words[w] ^= mask;
    i = lead + words.length * 4;
    for (; i < length; i++) data[i] ^= maskKey[(keyOffset + i) & 3];
    return;
  }
  const m0 = maskKey[keyOffset & 3];
  const m1 = maskKey[(keyOffset + 1) & 3];
  const m2 = maskKey[(keyOffset + 2) & 3];
  const m3 = maskKey[(keyOffset + 3) & 3];
  const whole = length & ~3;
  // Four bytes per turn: the loop overhead dominates a byte-at-a-time XOR.
  for (; i < whole; i += 4) {
    data[i] ^= m0;
    data[i + 1] ^= m1;
    data[i + 2] ^= m2;
    data[i + 3] ^= m3;
  }
  for (; i < length; i++) data[i] ^= maskKey[(keyOffset + i) & 3];
}

/** bufferutil's unmask for any key offset: it always starts at key byte 0, so it gets the key rotated. */
function rotatingKey(unmask: Unmask): MaskFunction {
  return (data, maskKey, keyOffset = 0) => {
    if ((keyOffset & 3) === 0) return unmask(data, maskKey);
    for (let k = 0; k < 4; k++) rotatedKey[k] = maskKey[(keyOffset + k) & 3];
    unmask(data, rotatedKey);
  };
}

/** Native from NATIVE_THRESHOLD bytes on, JavaScript below. */
function byLength(native: MaskFunction): MaskFunction {
  return (data, maskKey, keyOffset) => (data.length >= NATIVE_THRESHOLD ? native(data, maskKey, keyOffset) : jsMask(data, maskKey, keyOffset));
}

/** bufferutil at any length, or undefined when it is not loaded. */
export const nativeMask: MaskFunction | undefined = bufferUtilUnmask === undefined ? undefined : rotatingKey(bufferUtilUnmask);

/** What the codec masks and unmasks with. */
export const applyMask: MaskFunction = nativeMask === undefined ? jsMask : byLength(nativeMask);

/** Which masking runs payloads from NATIVE_THRESHOLD bytes on: for tests and diagnostics. */
export function maskingImplementation(): 'bufferutil' | 'javascript' {
  return nativeMask === undefined ? 'javascript' : 'bufferutil';
}
