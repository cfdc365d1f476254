/**
 * The `ws` package as the reference implementation (DESIGN.md §3): frames
 * that ws's Sender writes parse with our FrameParser to the same payloads,
 * and frames our FrameSerializer writes are read by ws's Receiver.
 */
import * as wsModule from 'ws';
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { Frame } from '../../lib/protocol/frame.js';
import { FrameParser } from '../../lib/protocol/frame-parser.js';
import { FrameSerializer } from '../../lib/protocol/frame-serializer.js';
import { CloseReason } from '../../lib/protocol/close-reason.js';
import { parseChunks, prng, randomBytes, randomInt, view, type FrameView } from './helpers.js';

// @types/ws does not declare Sender and Receiver; these are their real signatures (ws/lib/sender.js, receiver.js).
interface SenderFrameOptions {
  fin: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
  rsv1: boolean;
}
interface WsSender {
  frame(data: Buffer, options: SenderFrameOptions): Buffer[];
}
type WsReceiver = Writable & {
  on(event: 'message', listener: (data: Buffer | Buffer[], isBinary: boolean) => void): WsReceiver;
  on(event: 'ping' | 'pong', listener: (data: Buffer) => void): WsReceiver;
  on(event: 'conclude', listener: (code: number, reason: Buffer) => void): WsReceiver;
  on(event: 'error', listener: (error: Error) => void): WsReceiver;
};
const { Sender, Receiver } = wsModule as unknown as {
  Sender: WsSender;
  Receiver: new (options: { isServer: boolean; maxPayload?: number }) => WsReceiver;
};

/** A frame view with the payload hex replaced by its length and SHA-1, to keep large comparisons cheap. */
function digest(frame: FrameView) {
  const hex = frame.hex.length <= 64 ? frame.hex : `${frame.hex.length / 2} bytes, sha1 ${createHash('sha1').update(frame.hex).digest('hex')}`;
  return { ...frame, hex };
}

const OPCODE_NAME: Record<number, string> = { 1: 'TEXT', 2: 'BINARY', 8: 'CLOSE', 9: 'PING', 10: 'PONG' };

/** ws's wire bytes for one frame, masked as a client sends. */
function wsFrame(data: Buffer, fin: boolean, opcode: number): Buffer {
  // readOnly: false lets ws mask the buffer in place, so hand it a copy.
  return Buffer.concat(Sender.frame(Buffer.from(data), { fin, opcode, mask: true, readOnly: false, rsv1: false }));
}

describe('ws Sender → FrameParser', () => {
  it('is really ws: its masked "Hello" has the RFC header and a 4-byte key', () => {
    const bytes = wsFrame(Buffer.from('Hello'), true, 0x1);
    expect([bytes[0], bytes[1]]).toEqual([0x81, 0x85]);
    expect(bytes.length).toBe(2 + 4 + 5);
  });

  it.each([0, 1, 125, 126, 127, 65535, 65536, 70000])('a %i-byte binary frame parses to the same payload', (length) => {
    const payload = randomBytes(prng(length + 1), length);
    const frames = parseChunks(new FrameParser({ maxFrameSize: 1 << 20, requireMask: true }), [
      wsFrame(payload, true, 0x2),
    ]);
    expect(frames).toHaveLength(1);
    expect(frames[0].frameType.name).toBe('BINARY');
    expect(frames[0].fin).toBe(true);
    expect(frames[0].data.equals(payload)).toBe(true);
  });

  it('text, control frames and a fragmented message with a ping inside', () => {
    const closePayload = Buffer.from([0x03, 0xe8, 0x62, 0x79, 0x65]); // 1000 "bye"
    const stream = Buffer.concat([
      wsFrame(Buffer.from('Hello, κόσμε'), true, 0x1),
      wsFrame(Buffer.from('frag-1 '), false, 0x1),
      wsFrame(Buffer.from('ping data'), true, 0x9),
      wsFrame(Buffer.from('frag-2 '), false, 0x0),
      wsFrame(Buffer.from('end'), true, 0x0),
      wsFrame(Buffer.alloc(0), true, 0xa),
      wsFrame(closePayload, true, 0x8),
    ]);
    const frames = parseChunks(new FrameParser({ maxFrameSize: 1 << 20, requireMask: true }), [stream]);
    expect(frames.map((f) => [f.frameType.name, f.fin, f.data.toString('hex')])).toEqual([
      ['TEXT', true, Buffer.from('Hello, κόσμε').toString('hex')],
      ['TEXT', false, Buffer.from('frag-1 ').toString('hex')],
      ['PING', true, Buffer.from('ping data').toString('hex')],
      ['TEXT', false, Buffer.from('frag-2 ').toString('hex')],
      ['TEXT', true, Buffer.from('end').toString('hex')],
      ['PONG', true, ''],
      ['CLOSE', true, closePayload.toString('hex')],
    ]);
    expect(frames[6].readReason()).toEqual(new CloseReason(1000, 'bye'));
  });

  it('random frame sequences from ws, in random chunks, parse to the frames ws was given', () => {
    const rand = prng(2024);
    const sizes = [0, 1, 2, 3, 4, 5, 124, 125, 126, 127, 300, 65535, 65536];
    for (let run = 0; run < 40; run++) {
      const wire: Buffer[] = [];
      const expected: FrameView[] = [];
      for (let n = 0; n < 12; n++) {
        const pick = randomInt(rand, 4);
        if (pick === 0) {
          const opcode = [0x8, 0x9, 0xa][randomInt(rand, 3)];
          const payload = randomBytes(rand, randomInt(rand, 126));
          wire.push(wsFrame(payload, true, opcode));
          expected.push({ type: OPCODE_NAME[opcode], opcode, fin: true, rsv: [false, false, false], hex: payload.toString('hex') });
        } else {
          // A message of 1-3 fragments, with a control frame possibly between them.
          const opcode = pick === 1 ? 0x1 : 0x2;
          const fragments = 1 + randomInt(rand, 3);
          for (let f = 0; f < fragments; f++) {
            const size = run % 4 === 0 ? sizes[randomInt(rand, sizes.length)] : randomInt(rand, 200);
            const payload = randomBytes(rand, size);
            const fin = f === fragments - 1;
            wire.push(wsFrame(payload, fin, f === 0 ? opcode : 0x0));
            expected.push({ type: OPCODE_NAME[opcode], opcode, fin, rsv: [false, false, false], hex: payload.toString('hex') });
            if (!fin && rand() < 0.5) {
              const ping = randomBytes(rand, randomInt(rand, 10));
              wire.push(wsFrame(ping, true, 0x9));
              expected.push({ type: 'PING', opcode: 9, fin: true, rsv: [false, false, false], hex: ping.toString('hex') });
            }
          }
        }
      }
      const stream = Buffer.concat(wire);
      const chunks: Buffer[] = [];
      for (let at = 0; at < stream.length; ) {
        const size = 1 + randomInt(rand, rand() < 0.5 ? 16 : 4096);
        chunks.push(stream.subarray(at, at + size));
        at += size;
      }
      const frames = parseChunks(new FrameParser({ maxFrameSize: 1 << 20, requireMask: true }), chunks);
      expect(frames.map(view).map(digest)).toEqual(expected.map(digest));
    }
  });
});

describe('FrameSerializer → ws Receiver', () => {
  type Event = [string, string] | ['message', string, boolean] | ['conclude', number, string];

  /** Feeds bytes to a server-side ws Receiver and collects what it reports until the close frame. */
  function receive(chunks: Buffer[]): Promise<Event[]> {
    return new Promise((resolve, reject) => {
      const events: Event[] = [];
      const receiver = new Receiver({ isServer: true });
      receiver.on('message', (data, isBinary) => {
        const bytes = Array.isArray(data) ? Buffer.concat(data) : data;
        events.push(['message', bytes.toString('hex'), isBinary]);
      });
      receiver.on('ping', (data) => events.push(['ping', data.toString('hex')]));
      receiver.on('pong', (data) => events.push(['pong', data.toString('hex')]));
      receiver.on('conclude', (code, reason) => {
        events.push(['conclude', code, reason.toString('utf8')]);
        resolve(events);
      });
      receiver.on('error', reject);
      for (const chunk of chunks) receiver.write(chunk);
    });
  }

  it('reads our masked frames, fragments reassembled, as the same messages', async () => {
    const serializer = new FrameSerializer({ masking: true });
    const big = randomBytes(prng(5), 70000);
    const frames = [
      new Frame.Text('Hello, κόσμε 𝄞'),
      new Frame.Binary(big),
      new Frame.Text(false, 'frag-1 '),
      new Frame.Ping('mid'),
      new Frame.Text(false, 'frag-2 '),
      new Frame.Text(true, 'end'),
      new Frame.Binary(false, Uint8Array.from([1, 2])),
      new Frame.Binary(true, Uint8Array.from([3])),
      new Frame.Pong(),
      new Frame.Close(new CloseReason(1000, 'bye')),
    ];
    const events = await receive(frames.flatMap((frame) => serializer.serialize(frame)));
    expect(events).toEqual([
      ['message', Buffer.from('Hello, κόσμε 𝄞').toString('hex'), false],
      ['message', big.toString('hex'), true],
      ['ping', Buffer.from('mid').toString('hex')],
      ['message', Buffer.from('frag-1 frag-2 end').toString('hex'), false],
      ['message', '010203', true],
      ['pong', ''],
      ['conclude', 1000, 'bye'],
    ]);
  });

  it.each([0, 125, 126, 65535, 65536])('reads a %i-byte binary frame', async (length) => {
    const payload = randomBytes(prng(length + 9), length);
    const serializer = new FrameSerializer({ masking: true });
    const events = await receive([
      ...serializer.serialize(new Frame.Binary(payload)),
      ...serializer.serialize(new Frame.Close()),
    ]);
    expect(events).toEqual([
      ['message', payload.toString('hex'), true],
      ['conclude', 1005, ''], // ws reports an empty Close as 1005 (no status received)
    ]);
  });
});
