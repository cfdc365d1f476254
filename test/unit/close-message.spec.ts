import { fitCloseMessage } from '../../lib/protocol/close-reason.js';
import { Frame } from '../../lib/protocol/frame.js';
import { CloseReason } from '../../lib/protocol/close-reason.js';
import { WebSocketCloseException } from '../../lib/session/websocket-close.exception.js';

const bytes = (text: string) => Buffer.byteLength(text, 'utf8');

describe('fitCloseMessage', () => {
  it('keeps a message of up to 123 bytes as it is', () => {
    expect(fitCloseMessage('')).toBe('');
    expect(fitCloseMessage('a'.repeat(123))).toBe('a'.repeat(123));
  });

  it('cuts ASCII at 123 bytes', () => {
    expect(fitCloseMessage('a'.repeat(200))).toBe('a'.repeat(123));
  });

  // Each case puts a character of 2, 3 or 4 bytes across the 123-byte line, at every offset.
  it.each([
    ['é', 2],
    ['€', 3],
    ['😀', 4],
  ])('never splits %s (%i bytes): the cut falls before it, and the result still fits a Close frame', (character, size) => {
    for (let prefix = 123 - size + 1; prefix <= 123; prefix++) {
      const message = 'a'.repeat(prefix) + character + 'tail';
      const fitted = fitCloseMessage(message);
      expect(bytes(fitted)).toBeLessThanOrEqual(123);
      expect(message.startsWith(fitted)).toBe(true);
      expect(fitted).toBe(prefix + size <= 123 ? 'a'.repeat(prefix) + character : 'a'.repeat(prefix));
      expect(() => new Frame.Close(new CloseReason(4000, fitted))).not.toThrow();
    }
  });

  it('keeps a whole message of multi-byte characters to the last one that fits', () => {
    const fitted = fitCloseMessage('€'.repeat(100)); // 300 bytes
    expect(fitted).toBe('€'.repeat(41)); // 123 bytes
  });
});

describe('WebSocketCloseException', () => {
  it('carries its code and reason as a CloseReason', () => {
    const exception = new WebSocketCloseException(4001, 'not allowed');
    expect(exception.closeReason).toEqual(new CloseReason(4001, 'not allowed'));
    expect(exception.message).toBe('WebSocket closed with 4001: not allowed');
  });

  it('cuts a long reason to what a Close frame carries', () => {
    expect(new WebSocketCloseException(1008, 'x'.repeat(500)).closeReason.message).toBe('x'.repeat(123));
  });

  it.each([999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])('refuses code %i, which may not be sent', (code) => {
    expect(() => new WebSocketCloseException(code)).toThrow(RangeError);
  });
});
