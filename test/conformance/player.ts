/**
 * What the conformance specs share to play a case against an echo route:
 * MessageReader (the server's frames as whole messages, checked against
 * RFC 6455, and against RFC 7692 when permessage-deflate was negotiated),
 * writing steps in chops, the close checks, and the player itself.
 */
import { createHash } from 'node:crypto';
import { encodeFrame, type RawClient, type RawFrame } from '../support/raw-client.js';
import { BINARY, CLOSE, closeBody, CONTINUATION, PING, PONG, TEXT, wellFormedUtf8, type Chop, type ConformanceCase, type Expected, type Wire } from './cases.js';

/** A message as read or expected; `compressed` (RSV1 on its first frame) only where permessage-deflate was negotiated. */
export interface Message extends Expected {
  compressed?: boolean;
}

/** How a negotiated permessage-deflate reads the server's compressed messages: in order, one whole payload each. */
export interface MessageInflater {
  inflate(payload: Buffer): Buffer;
}

const OPCODE_NAMES: Record<number, string> = { [TEXT]: 'text', [BINARY]: 'binary', [CLOSE]: 'close', [PING]: 'ping', [PONG]: 'pong' };

/** A comparable, readable summary: short payloads in hex, long ones by length and hash. */
export function describeMessage(message: Message | null): unknown {
  if (message === null) return 'TCP ended';
  const { opcode, payload, compressed } = message;
  const described = {
    type: OPCODE_NAMES[opcode] ?? `opcode ${opcode}`,
    length: payload.length,
    payload: payload.length <= 256 ? payload.toString('hex') : `sha256:${createHash('sha256').update(payload).digest('hex')}`,
  };
  return compressed === undefined ? described : { ...described, compressed };
}

/**
 * Reads what the server sends as whole messages and control frames, and
 * checks the server's own frames against RFC 6455 on the way: no RSV bits
 * unless negotiated, known opcodes, control frames unfragmented and at
 * most 125 bytes, continuations only inside a fragmented message. Given an
 * inflater (permessage-deflate negotiated), RSV1 may mark a message's first
 * frame, never a continuation or control frame (RFC 7692 §6.1), and such a
 * message is inflated before it is returned.
 */
export class MessageReader {
  private openOpcode: number | undefined;
  private openCompressed = false;
  private parts: Buffer[] = [];

  constructor(
    private readonly client: RawClient,
    private readonly inflater?: MessageInflater,
  ) {}

  async next(): Promise<Message | null> {
    for (;;) {
      const frame = await this.client.readFrame(10_000);
      if (frame === null) {
        if (this.openOpcode !== undefined) throw new Error('Server ended TCP inside a fragmented message');
        return null;
      }
      this.checkRsv(frame);
      if (frame.opcode >= 0x8) {
        if (frame.opcode !== CLOSE && frame.opcode !== PING && frame.opcode !== PONG) {
          throw new Error(`Server sent reserved opcode ${frame.opcode}`);
        }
        if (!frame.fin) throw new Error('Server fragmented a control frame');
        if (frame.payload.length > 125) throw new Error(`Server control frame of ${frame.payload.length} bytes`);
        return { opcode: frame.opcode, payload: frame.payload };
      }
      if (frame.opcode === CONTINUATION) {
        if (this.openOpcode === undefined) throw new Error('Server sent a continuation with no message open');
      } else if (frame.opcode === TEXT || frame.opcode === BINARY) {
        if (this.openOpcode !== undefined) throw new Error('Server started a message inside another');
        this.openOpcode = frame.opcode;
        this.openCompressed = frame.rsv === 4;
      } else {
        throw new Error(`Server sent reserved opcode ${frame.opcode}`);
      }
      this.parts.push(frame.payload);
      if (!frame.fin) continue;
      const message = this.complete(this.openOpcode, Buffer.concat(this.parts));
      this.openOpcode = undefined;
      this.parts = [];
      if (message.opcode === TEXT && !wellFormedUtf8(message.payload)) throw new Error('Server sent a text message that is not UTF-8');
      return message;
    }
  }

  private checkRsv(frame: RawFrame): void {
    if (frame.rsv === 0) return;
    if (this.inflater === undefined) throw new Error(`Server frame with RSV bits ${frame.rsv} and no extension negotiated`);
    if (frame.rsv !== 4) throw new Error(`Server frame with RSV bits ${frame.rsv}: only RSV1 was negotiated`);
    if (frame.opcode >= 0x8) throw new Error(`Server set RSV1 on a control frame (opcode ${frame.opcode})`);
    if (frame.opcode === CONTINUATION) throw new Error('Server set RSV1 on a continuation frame');
  }

  private complete(opcode: number, payload: Buffer): Message {
    if (this.inflater === undefined) return { opcode, payload };
    if (!this.openCompressed) return { opcode, payload, compressed: false };
    try {
      return { opcode, payload: this.inflater.inflate(payload), compressed: true };
    } catch (error) {
      throw new Error(`Server's compressed message (${payload.length} bytes: ${payload.subarray(0, 32).toString('hex')}…) does not inflate: ${String(error)}`);
    }
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Writes the step's bytes in one write, or cut into chops with a turn of the event loop between them. */
export async function write(client: RawClient, wire: Wire[], chop: Chop = 'bulk'): Promise<void> {
  const data = Buffer.concat(wire.map((item) => (Buffer.isBuffer(item) ? item : encodeFrame(item))));
  if (chop === 'bulk') {
    client.write(data);
    return;
  }
  const size = chop === 'octet' ? 1 : chop;
  for (let offset = 0; offset < data.length; offset += size) {
    client.write(data.subarray(offset, offset + size));
    await nextTurn();
  }
}

/** The next `count` messages, stopping early at a Close or the end of TCP (which then shows in the diff). */
async function readMessages(reader: MessageReader, count: number): Promise<Array<Message | null>> {
  const received: Array<Message | null> = [];
  while (received.length < count) {
    const message = await reader.next();
    received.push(message);
    if (message === null || message.opcode === CLOSE) break;
  }
  return received;
}

/** The server's Close: code and reason parsed, and checked to be a Close a server may send. */
export function parseClose(message: Message | null): { code: number; reason: string } {
  // Anything else fails here with the whole message shown.
  if (message?.opcode !== CLOSE) expect(describeMessage(message)).toBe('a Close frame');
  const payload = message!.payload;
  if (payload.length === 0) return { code: 1005, reason: '' };
  expect(payload.length).toBeGreaterThanOrEqual(2);
  const reason = payload.subarray(2);
  expect(wellFormedUtf8(reason)).toBe(true);
  return { code: payload.readUInt16BE(0), reason: reason.toString('utf8') };
}

/** After the server's Close: TCP ends, with nothing more sent. */
async function expectEnded(client: RawClient, reader: MessageReader): Promise<void> {
  expect(await client.waitForEnd(5000)).toBe(true);
  expect(describeMessage(await reader.next())).toBe('TCP ended');
}

/** A fresh connection (no extension offered) on the same app still echoes. */
export async function expectStillServing(connect: () => Promise<RawClient>): Promise<void> {
  const client = await connect();
  const reader = new MessageReader(client);
  client.send({ opcode: TEXT, payload: 'still serving' });
  expect(describeMessage(await reader.next())).toEqual(describeMessage({ opcode: TEXT, payload: Buffer.from('still serving') }));
  client.send({ opcode: CLOSE, payload: closeBody(1000) });
  expect(parseClose(await reader.next()).code).toBe(1000);
  client.destroy();
}

/**
 * Plays the case's steps on an open connection, then checks how it ends:
 * still open (our Close answered with 1000), or the server's Close with the
 * expected code, TCP ended, and `connect` still getting an echo.
 */
export async function playCase(
  client: RawClient,
  reader: MessageReader,
  testCase: Pick<ConformanceCase, 'steps' | 'outcome'>,
  connect: () => Promise<RawClient>,
): Promise<void> {
  for (const step of testCase.steps) {
    if ('send' in step) {
      await write(client, step.send, step.chop);
    } else {
      const received = await readMessages(reader, step.expect.length);
      expect(received.map(describeMessage)).toEqual(step.expect.map(describeMessage));
    }
  }

  const outcome = testCase.outcome;
  if (outcome.kind === 'open') {
    // Our Close must be the next thing answered: this also shows nothing unexpected (an echo, a pong) was sent.
    client.send({ opcode: CLOSE, payload: closeBody(1000, 'conformance') });
    expect(parseClose(await reader.next()).code).toBe(1000);
    await expectEnded(client, reader);
    return;
  }
  const reply = parseClose(await reader.next());
  expect(reply.code).toBe(outcome.code);
  if (outcome.reason !== undefined) expect(reply.reason).toBe(outcome.reason);
  await expectEnded(client, reader);
  await expectStillServing(connect);
}
