/**
 * RFC 6455 conformance of a default session, in the manner of the
 * Autobahn|Testsuite fuzzingclient: every case in ./cases.ts is played by
 * RawClient (its own codec, not the library's) against an echo route, and
 * the server's answer is checked message by message, then how it ends:
 * the exact Close code, TCP closed by the server, and the app still serving.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { Controller } from '@nestjs/common';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { encodeFrame, RawClient } from '../support/raw-client.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import {
  BINARY,
  caseGroups,
  CLOSE,
  closeBody,
  CONTINUATION,
  isValidCloseCode,
  PING,
  PONG,
  scanUtf8,
  TEXT,
  utf8Samples,
  wellFormedUtf8,
  type Chop,
  type ConformanceCase,
  type Expected,
  type Wire,
} from './cases.js';

const PATH = '/conformance/echo';

@Controller('conformance')
class EchoController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

const OPCODE_NAMES: Record<number, string> = { [TEXT]: 'text', [BINARY]: 'binary', [CLOSE]: 'close', [PING]: 'ping', [PONG]: 'pong' };

/** A comparable, readable summary: short payloads in hex, long ones by length and hash. */
function describeMessage(message: Expected | null): unknown {
  if (message === null) return 'TCP ended';
  const { opcode, payload } = message;
  return {
    type: OPCODE_NAMES[opcode] ?? `opcode ${opcode}`,
    length: payload.length,
    payload: payload.length <= 256 ? payload.toString('hex') : `sha256:${createHash('sha256').update(payload).digest('hex')}`,
  };
}

/**
 * Reads what the server sends as whole messages and control frames, and
 * checks the server's own frames against RFC 6455 on the way: no RSV bits
 * (nothing negotiated), known opcodes, control frames unfragmented and at
 * most 125 bytes, continuations only inside a fragmented message.
 */
class MessageReader {
  private openOpcode: number | undefined;
  private parts: Buffer[] = [];

  constructor(private readonly client: RawClient) {}

  async next(): Promise<Expected | null> {
    for (;;) {
      const frame = await this.client.readFrame(10_000);
      if (frame === null) {
        if (this.openOpcode !== undefined) throw new Error('Server ended TCP inside a fragmented message');
        return null;
      }
      if (frame.rsv !== 0) throw new Error(`Server frame with RSV bits ${frame.rsv} and no extension negotiated`);
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
      } else {
        throw new Error(`Server sent reserved opcode ${frame.opcode}`);
      }
      this.parts.push(frame.payload);
      if (!frame.fin) continue;
      const message = { opcode: this.openOpcode, payload: Buffer.concat(this.parts) };
      this.openOpcode = undefined;
      this.parts = [];
      if (message.opcode === TEXT && !wellFormedUtf8(message.payload)) throw new Error('Server sent a text message that is not UTF-8');
      return message;
    }
  }
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

async function connect(port: number): Promise<RawClient> {
  const client = clients.track(await RawClient.connect(port, PATH));
  client.socket.setNoDelay(true);
  return client;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Writes the step's bytes in one write, or cut into chops with a turn of the event loop between them. */
async function write(client: RawClient, wire: Wire[], chop: Chop = 'bulk'): Promise<void> {
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
async function readMessages(reader: MessageReader, count: number): Promise<Array<Expected | null>> {
  const received: Array<Expected | null> = [];
  while (received.length < count) {
    const message = await reader.next();
    received.push(message);
    if (message === null || message.opcode === CLOSE) break;
  }
  return received;
}

/** The server's Close: code and reason parsed, and checked to be a Close a server may send. */
function parseClose(message: Expected | null): { code: number; reason: string } {
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

/** A fresh connection on the same app still echoes. */
async function expectStillServing(port: number): Promise<void> {
  const client = await connect(port);
  const reader = new MessageReader(client);
  client.send({ opcode: TEXT, payload: 'still serving' });
  expect(describeMessage(await reader.next())).toEqual(describeMessage({ opcode: TEXT, payload: Buffer.from('still serving') }));
  client.send({ opcode: CLOSE, payload: closeBody(1000) });
  expect(parseClose(await reader.next()).code).toBe(1000);
  client.destroy();
}

async function play(port: number, testCase: ConformanceCase): Promise<void> {
  const client = await connect(port);
  const reader = new MessageReader(client);
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
  await expectStillServing(port);
}

/** What the server answers to a Close carrying `code`: the code of its Close, once TCP ended after it. */
async function closeReplyTo(port: number, code: number): Promise<string> {
  const client = await connect(port);
  const reader = new MessageReader(client);
  client.send({ opcode: CLOSE, payload: closeBody(code) });
  const message = await reader.next();
  if (message?.opcode !== CLOSE) return `no Close: ${JSON.stringify(describeMessage(message))}`;
  const reply = parseClose(message).code;
  const ended = await client.waitForEnd(5000);
  client.destroy();
  return ended ? String(reply) : `${reply}, TCP not ended`;
}

/** Where TextDecoder (fatal, streaming) first throws when fed one byte at a time, and whether the whole decodes. */
function decoderVerdict(data: Buffer): { badAt: number | undefined; complete: boolean } {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let i = 0; i < data.length; i++) {
    try {
      decoder.decode(data.subarray(i, i + 1), { stream: true });
    } catch {
      return { badAt: i, complete: false };
    }
  }
  try {
    decoder.decode();
    return { badAt: undefined, complete: true };
  } catch {
    return { badAt: undefined, complete: false };
  }
}

// The case table's expectations come from its own UTF-8 grammar; it must agree with an independent decoder.
describe('UTF-8 oracle of the case table', () => {
  it.each(utf8Samples().map((sample) => [`${sample.id} ${sample.name}`, sample.data] as const))(
    '%s: same first bad byte and verdict as TextDecoder',
    (_name, data) => expect(scanUtf8(data)).toEqual(decoderVerdict(data)),
  );
});

describe('RFC 6455 conformance (Autobahn-style) of a default session echo route', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startApp([EchoController])));
  afterAll(() => t.close());

  for (const group of caseGroups) {
    describe(`${group.id} ${group.title}`, () => {
      it.each(group.cases.map((testCase) => [`${testCase.id} ${testCase.title}`, testCase] as const))('%s', (_name, testCase) =>
        play(t.port, testCase),
      );
    });
  }

  // Every code from 0 to 5000, 500 codes a test, a few connections at a time.
  describe('7.10 close code sweep', () => {
    const ranges = Array.from({ length: 10 }, (_, i) => [i * 500, i === 9 ? 5000 : i * 500 + 499] as const);
    const named = ranges.map(
      ([from, to], i) => [`7.10.${i + 1} close codes ${from}-${to}: valid ones echoed, the rest fail with 1002`, from, to] as const,
    );
    it.each(named)('%s', async (_name, from, to) => {
      const codes = Array.from({ length: to - from + 1 }, (_, i) => from + i);
      const expected = codes.map((code) => `${code} -> ${isValidCloseCode(code) ? code : 1002}`);
      const actual: string[] = [];
      for (let i = 0; i < codes.length; i += 25) {
        const batch = codes.slice(i, i + 25);
        const replies = await Promise.all(batch.map((code) => closeReplyTo(t.port, code)));
        batch.forEach((code, k) => actual.push(`${code} -> ${replies[k]}`));
      }
      expect(actual).toEqual(expected);
      await expectStillServing(t.port);
    });
  });
});
