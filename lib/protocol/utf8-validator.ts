/**
 * Streaming UTF-8 validation (RFC 3629), so a text message split across
 * fragments is checked as it arrives and fails at the first bad byte.
 * A byte-class state machine after Björn Höhrmann's DFA decoder.
 */
import { isUtf8 } from 'node:buffer';

const ACCEPT = 0;
const REJECT = 12;

// Byte -> character class.
const CLASS = new Uint8Array(256);
// (state + class) -> next state; states are multiples of 12.
const TRANSITION = new Uint8Array(108);

(() => {
  const ranges: Array<[number, number, number]> = [
    [0x00, 0x7f, 0],
    [0x80, 0x8f, 1],
    [0x90, 0x9f, 9],
    [0xa0, 0xbf, 7],
    [0xc0, 0xc1, 8],
    [0xc2, 0xdf, 2],
    [0xe0, 0xe0, 10],
    [0xe1, 0xec, 3],
    [0xed, 0xed, 4],
    [0xee, 0xef, 3],
    [0xf0, 0xf0, 11],
    [0xf1, 0xf3, 6],
    [0xf4, 0xf4, 5],
    [0xf5, 0xff, 8],
  ];
  for (const [from, to, cls] of ranges) CLASS.fill(cls, from, to + 1);
  TRANSITION.fill(REJECT);
  // Rows: state 0 accept, 12 reject, 24 one continuation left, 36 two left,
  // 48 after E0 (A0-BF), 60 after ED (80-9F), 72 after F0 (90-BF),
  // 84 three left, 96 after F4 (80-8F).
  const set = (state: number, classes: number[], next: number) => {
    for (const cls of classes) TRANSITION[state + cls] = next;
  };
  set(0, [0], 0);
  set(0, [2], 24);
  set(0, [3], 36);
  set(0, [4], 60);
  set(0, [6], 84);
  set(0, [10], 48);
  set(0, [11], 72);
  set(0, [5], 96);
  set(24, [1, 7, 9], 0);
  set(36, [1, 7, 9], 24);
  set(48, [7], 24);
  set(60, [1, 9], 24);
  set(72, [7, 9], 36);
  set(84, [1, 7, 9], 36);
  set(96, [1], 36);
})();

export class Utf8Validator {
  private state = ACCEPT;

  /** Feeds the next bytes; false as soon as they cannot be valid UTF-8. */
  update(bytes: Uint8Array): boolean {
    let state = this.state;
    let i = 0;
    // The end of a character the previous bytes stopped inside.
    while (state !== ACCEPT && state !== REJECT && i < bytes.length) state = step(state, bytes[i++]);
    if (state === ACCEPT && i < bytes.length) {
      // From a character boundary on, Node's native check; when the bytes end in a non-ASCII
      // character, they may stop inside it: the state machine takes that one.
      const end = bytes.length;
      let last = end;
      if (bytes[end - 1] >= 0x80) {
        last = end - 1;
        while (last > i && end - last < 4 && (bytes[last] & 0xc0) === 0x80) last--;
      }
      if (last > i && !isUtf8(i === 0 && last === end ? bytes : bytes.subarray(i, last))) state = REJECT;
      for (let j = last; j < end && state !== REJECT; j++) state = step(state, bytes[j]);
    }
    this.state = state;
    return state !== REJECT;
  }

  /** True once a byte could not be valid UTF-8; stays so until `finish`. */
  get failed(): boolean {
    return this.state === REJECT;
  }

  /** True when everything fed so far ends on a character boundary; resets for the next message. */
  finish(): boolean {
    const complete = this.state === ACCEPT;
    this.state = ACCEPT;
    return complete;
  }
}

function step(state: number, byte: number): number {
  return TRANSITION[state + CLASS[byte]];
}

/** A whole message at once: Node's native check. */
export function isValidUtf8(bytes: Uint8Array): boolean {
  return isUtf8(bytes);
}
