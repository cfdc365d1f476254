/**
 * RFC 6455 §5.3 masking: XOR with a 4-byte key. The same operation masks and
 * unmasks, in place, so a received payload needs no copy.
 */

/** From this length on, XOR 32-bit words: four times fewer steps on large payloads. */
const WORD_THRESHOLD = 64;
const keyBytes = new Uint8Array(4);
const keyWord = new Int32Array(keyBytes.buffer);

export function applyMask(data: Uint8Array, maskKey: Uint8Array, keyOffset = 0): void {
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
