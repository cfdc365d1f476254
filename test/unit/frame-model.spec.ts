import { CloseCode, CloseReason, isValidWireCloseCode } from '../../lib/protocol/close-reason.js';
import { Frame } from '../../lib/protocol/frame.js';
import { FrameType } from '../../lib/protocol/frame-type.js';
import { WebSocketProtocolError } from '../../lib/protocol/protocol-error.js';

describe('FrameType', () => {
  it('has the RFC 6455 §5.2 opcodes', () => {
    expect(FrameType.TEXT.opcode).toBe(0x1);
    expect(FrameType.BINARY.opcode).toBe(0x2);
    expect(FrameType.CLOSE.opcode).toBe(0x8);
    expect(FrameType.PING.opcode).toBe(0x9);
    expect(FrameType.PONG.opcode).toBe(0xa);
  });

  it('marks exactly Close, Ping and Pong as control frames (opcodes 0x8 and up)', () => {
    expect(FrameType.values().map((type) => [type.name, type.controlFrame])).toEqual([
      ['TEXT', false],
      ['BINARY', false],
      ['CLOSE', true],
      ['PING', true],
      ['PONG', true],
    ]);
  });

  it('get maps each opcode to its type, and continuation/reserved opcodes to undefined', () => {
    const expected: Record<number, FrameType | undefined> = {
      1: FrameType.TEXT,
      2: FrameType.BINARY,
      8: FrameType.CLOSE,
      9: FrameType.PING,
      10: FrameType.PONG,
    };
    for (let opcode = 0; opcode < 16; opcode++) expect(FrameType.get(opcode)).toBe(expected[opcode]);
  });

  it('toString is the name', () => {
    expect(String(FrameType.PING)).toBe('PING');
    expect(`${FrameType.TEXT}`).toBe('TEXT');
  });
});

describe('Frame constructors', () => {
  it('Frame.Text(text) is a final TEXT frame of the UTF-8 bytes', () => {
    const frame = new Frame.Text('\u03ba\u03cc\u03c3\u03bc\u03b5'); // κόσμε with U+03CC
    expect(frame).toBeInstanceOf(Frame);
    expect(frame.frameType).toBe(FrameType.TEXT);
    expect(frame.fin).toBe(true);
    expect([...frame.data]).toEqual([0xce, 0xba, 0xcf, 0x8c, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5]);
    expect([frame.rsv1, frame.rsv2, frame.rsv3]).toEqual([false, false, false]);
    expect(frame.readText()).toBe('\u03ba\u03cc\u03c3\u03bc\u03b5');
  });

  it('Frame.Text(fin, data, rsv...) keeps fin and the rsv bits', () => {
    const frame = new Frame.Text(false, Uint8Array.from([0x68, 0x69]), true, false, true);
    expect(frame.fin).toBe(false);
    expect(frame.readText()).toBe('hi');
    expect([frame.rsv1, frame.rsv2, frame.rsv3]).toEqual([true, false, true]);
    expect(new Frame.Text(true, 'x').readText()).toBe('x');
  });

  it('Frame.Binary(data) is a final BINARY frame of those bytes', () => {
    const frame = new Frame.Binary(Uint8Array.from([0, 255, 7]));
    expect(frame.frameType).toBe(FrameType.BINARY);
    expect(frame.fin).toBe(true);
    expect(Buffer.isBuffer(frame.data)).toBe(true);
    expect([...frame.data]).toEqual([0, 255, 7]);
  });

  it('Frame.Binary over a Uint8Array view keeps only that view', () => {
    const backing = Uint8Array.from([1, 2, 3, 4, 5, 6]);
    const frame = new Frame.Binary(backing.subarray(2, 5));
    expect([...frame.data]).toEqual([3, 4, 5]);
  });

  it('Frame.Binary(fin, data, rsv...) keeps fin and the rsv bits', () => {
    const frame = new Frame.Binary(false, Uint8Array.from([9]), false, true, false);
    expect(frame.fin).toBe(false);
    expect([frame.rsv1, frame.rsv2, frame.rsv3]).toEqual([false, true, false]);
  });

  it('Ping and Pong default to an empty payload and take text or bytes', () => {
    expect(new Frame.Ping().data.length).toBe(0);
    expect(new Frame.Pong().data.length).toBe(0);
    const ping = new Frame.Ping('abc');
    expect(ping.frameType).toBe(FrameType.PING);
    expect(ping.fin).toBe(true);
    expect(ping.readText()).toBe('abc');
    const pong = new Frame.Pong(Uint8Array.from([1, 2]));
    expect(pong.frameType).toBe(FrameType.PONG);
    expect([...pong.data]).toEqual([1, 2]);
  });

  it('Frame.Close(reason) encodes the code big-endian, then the UTF-8 message (RFC 6455 §5.5.1)', () => {
    const frame = new Frame.Close(new CloseReason(1000, 'bye'));
    expect(frame.frameType).toBe(FrameType.CLOSE);
    expect(frame.fin).toBe(true);
    expect([...frame.data]).toEqual([0x03, 0xe8, 0x62, 0x79, 0x65]); // 1000 = 0x03e8
    const utf8 = new Frame.Close(new CloseReason(4001, 'é'));
    expect([...utf8.data]).toEqual([0x0f, 0xa1, 0xc3, 0xa9]); // 4001 = 0x0fa1
  });

  it('Frame.Close() is empty; Frame.Close(bytes) carries raw bytes', () => {
    expect(new Frame.Close().data.length).toBe(0);
    expect([...new Frame.Close(Uint8Array.from([0x03, 0xe9])).data]).toEqual([0x03, 0xe9]);
  });

  it('Frame.byType builds the frame class for each type', () => {
    const data = Buffer.from('x');
    expect(Frame.byType(FrameType.TEXT, false, data)).toBeInstanceOf(Frame.Text);
    expect(Frame.byType(FrameType.BINARY, true, data)).toBeInstanceOf(Frame.Binary);
    expect(Frame.byType(FrameType.CLOSE, true, data)).toBeInstanceOf(Frame.Close);
    expect(Frame.byType(FrameType.PING, true, data)).toBeInstanceOf(Frame.Ping);
    expect(Frame.byType(FrameType.PONG, true, data)).toBeInstanceOf(Frame.Pong);
    const text = Frame.byType(FrameType.TEXT, false, data, true, true, false);
    expect([text.fin, text.rsv1, text.rsv2, text.rsv3]).toEqual([false, true, true, false]);
  });

  it('toString names the type, fin and length', () => {
    expect(String(new Frame.Text('abc'))).toBe('Frame TEXT (fin=true, buffer len = 3)');
  });
});

describe('Frame.readReason', () => {
  it('reads code and reason of a Close frame', () => {
    const reason = new Frame.Close(Uint8Array.from([0x03, 0xe9, 0x61, 0x77, 0x61, 0x79])).readReason();
    expect(reason).toBeInstanceOf(CloseReason);
    expect(reason?.code).toBe(1001);
    expect(reason?.message).toBe('away');
    expect(reason?.knownReason).toBe(CloseCode.GOING_AWAY);
  });

  it('reads a code with no reason text as an empty message', () => {
    const reason = new Frame.Close(Uint8Array.from([0x0b, 0xb8])).readReason(); // 3000
    expect(reason?.code).toBe(3000);
    expect(reason?.message).toBe('');
  });

  it('round-trips a CloseReason with a UTF-8 message', () => {
    const reason = new Frame.Close(new CloseReason(1011, 'κόσμε')).readReason();
    expect([reason?.code, reason?.message]).toEqual([1011, 'κόσμε']);
  });

  it('is null for an empty Close frame and for other frame types', () => {
    expect(new Frame.Close().readReason()).toBeNull();
    // A 1-byte payload cannot hold a code (RFC 6455 §5.5.1): no reason, and no throw.
    expect(new Frame.Close(Uint8Array.from([0x03])).readReason()).toBeNull();
    expect(new Frame.Text(false, Uint8Array.from([0x03, 0xe8])).readReason()).toBeNull();
    expect(new Frame.Ping(Uint8Array.from([0x03, 0xe8])).readReason()).toBeNull();
  });
});

describe('CloseReason', () => {
  it('has the RFC 6455 §7.4.1 code values under Ktor names', () => {
    expect(CloseReason.Codes).toBe(CloseCode);
    expect([
      CloseCode.NORMAL,
      CloseCode.GOING_AWAY,
      CloseCode.PROTOCOL_ERROR,
      CloseCode.CANNOT_ACCEPT,
      CloseCode.CLOSED_ABNORMALLY,
      CloseCode.NOT_CONSISTENT,
      CloseCode.VIOLATED_POLICY,
      CloseCode.TOO_BIG,
      CloseCode.NO_EXTENSION,
      CloseCode.INTERNAL_ERROR,
      CloseCode.SERVICE_RESTART,
      CloseCode.TRY_AGAIN_LATER,
    ]).toEqual([1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013]);
  });

  it('knownReason names known codes and is undefined for others', () => {
    expect(new CloseReason(1000).knownReason).toBe(CloseCode.NORMAL);
    expect(new CloseReason(1009, 'big').knownReason).toBe(CloseCode.TOO_BIG);
    for (const code of [0, 999, 1004, 1005, 1014, 1015, 2000, 3000, 4999, 5000]) {
      expect(new CloseReason(code).knownReason).toBeUndefined();
    }
  });

  it('defaults the message to empty and prints its name', () => {
    const reason = new CloseReason(1002);
    expect(reason.message).toBe('');
    expect(String(new CloseReason(1000, 'done'))).toBe('CloseReason(reason=NORMAL, message=done)');
    expect(String(new CloseReason(4000, 'app'))).toBe('CloseReason(reason=4000, message=app)');
  });
});

describe('isValidWireCloseCode (RFC 6455 §7.4)', () => {
  /** Written out from §7.4.1/§7.4.2 and the IANA registry, independently of the code under test. */
  function rfcValid(code: number): boolean {
    if (code < 1000) return false; // 0-999: not used
    if (code >= 1000 && code <= 1003) return true;
    if (code === 1004 || code === 1005 || code === 1006) return false; // reserved; 1005/1006 never sent
    if (code >= 1007 && code <= 1014) return true;
    if (code === 1015) return false; // TLS failure, never sent
    if (code >= 1016 && code <= 2999) return false; // reserved for the protocol, unassigned
    if (code >= 3000 && code <= 4999) return true; // libraries/frameworks and private use
    return false; // 5000 and up
  }

  it('agrees with the RFC rules for every code 0..5000', () => {
    const disagreements: number[] = [];
    for (let code = 0; code <= 5000; code++) {
      if (isValidWireCloseCode(code) !== rfcValid(code)) disagreements.push(code);
    }
    expect(disagreements).toEqual([]);
  });

  it('spot checks at the edges', () => {
    expect([999, 1000, 1003, 1004, 1005, 1006, 1007, 1014, 1015, 1016].map(isValidWireCloseCode)).toEqual([
      false,
      true,
      true,
      false,
      false,
      false,
      true,
      true,
      false,
      false,
    ]);
    expect([2999, 3000, 4999, 5000, 65535].map(isValidWireCloseCode)).toEqual([false, true, true, false, false]);
  });
});

describe('WebSocketProtocolError', () => {
  it('is an Error carrying the close code', () => {
    const error = new WebSocketProtocolError(1007, 'bad text');
    expect(error).toBeInstanceOf(Error);
    expect(error.closeCode).toBe(1007);
    expect(error.message).toBe('bad text');
    expect(error.name).toBe('WebSocketProtocolError');
  });
});

describe('Frame.Close refuses reasons that may not be sent (RFC 6455 §5.5, §7.4)', () => {
  it.each([1005, 1006, 1015, 999, 2000, 5000])('code %i', (code) => {
    expect(() => new Frame.Close(new CloseReason(code))).toThrow(RangeError);
  });

  it('a reason of 124 bytes, counted as UTF-8', () => {
    expect(() => new Frame.Close(new CloseReason(1000, 'é'.repeat(62)))).toThrow(RangeError);
    expect(new Frame.Close(new CloseReason(1000, 'é'.repeat(61) + 'x')).data.length).toBe(125);
  });
});
