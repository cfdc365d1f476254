/**
 * RFC 6455 conformance of a default session, in the manner of the
 * Autobahn|Testsuite fuzzingclient: every case in ./cases.ts is played by
 * RawClient (its own codec, not the library's) against an echo route, and
 * the server's answer is checked message by message, then how it ends:
 * the exact Close code, TCP closed by the server, and the app still serving.
 */
import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { RawClient } from '../support/raw-client.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import { caseGroups, CLOSE, closeBody, isValidCloseCode, scanUtf8, utf8Samples, type ConformanceCase } from './cases.js';
import { describeMessage, expectStillServing, MessageReader, parseClose, playCase } from './player.js';

const PATH = '/conformance/echo';

@Controller('conformance')
class EchoController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

async function connect(port: number): Promise<RawClient> {
  const client = clients.track(await RawClient.connect(port, PATH));
  client.socket.setNoDelay(true);
  return client;
}

async function play(port: number, testCase: ConformanceCase): Promise<void> {
  const client = await connect(port);
  await playCase(client, new MessageReader(client), testCase, () => connect(port));
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
      await expectStillServing(() => connect(t.port));
    });
  });
});
