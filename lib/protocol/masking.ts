/**
 * RFC 6455 §5.3 masking: XOR with a 4-byte key. The same operation masks and
 * unmasks, in place, so a received payload needs no copy.
 */
export function applyMask(data: Uint8Array, maskKey: Uint8Array, keyOffset = 0): void {
  const length = data.length;
  const m0 = maskKey[keyOffset & 3];
  const m1 = maskKey[(keyOffset + 1) & 3];
  const m2 = maskKey[(keyOffset + 2) & 3];
  const m3 = maskKey[(keyOffset + 3) & 3];
  const whole = length & ~3;
  let i = 0;
  // Four bytes per turn: the loop overhead dominates a byte-at-a-time XOR.
  for (; i < whole; i += 4) {
    data[i] ^= m0;
    data[i + 1] ^= m1;
    data[i + 2] ^= m2;
    data[i + 3] ^= m3;
  }
  for (; i < length; i++) data[i] ^= maskKey[(keyOffset + i) & 3];
}
