/**
 * UTF-8 checking is the default session's, not the raw session's: a raw
 * session shows frames as they came, so a text frame that is not UTF-8,
 * sent in chops like the fail-fast cases, still reaches its handler whole.
 */
import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import { Frame, WebSocketRoute, type WebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { encodeFrame, RawClient } from '../support/raw-client.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import { BINARY, TEXT } from './cases.js';
import { write } from './player.js';

@Controller('conformance')
class RawReportController {
  /** Answers each data frame with a Binary frame of its type name and its payload, so any bytes can come back. */
  @WebSocketRoute('raw-report', { raw: true })
  async report(session: WebSocketServerSession) {
    for await (const frame of session.incoming) {
      if (frame.frameType.controlFrame) continue;
      await session.send(new Frame.Binary(Buffer.concat([Buffer.from(`${frame.frameType.name} fin=${frame.fin} `), frame.data])));
    }
  }
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

describe('a raw session and text that is not UTF-8', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startApp([RawReportController])));
  afterAll(() => t.close());

  it('gets the invalid text frame as it came, though it arrived in chops with the bad byte early', async () => {
    const client = clients.track(await RawClient.connect(t.port, '/conformance/raw-report'));
    // "κ", then U+110000 (invalid from its second byte on), then ASCII: Autobahn 6.4.3's payload shape.
    const payload = Buffer.from([0xce, 0xba, 0xf4, 0x90, 0x80, 0x80, 0x61, 0x62]);
    await write(client, [encodeFrame({ opcode: TEXT, payload })], 1);

    const reply = await client.readFrame();
    expect(reply?.opcode).toBe(BINARY);
    expect(reply!.payload.toString('hex')).toBe(Buffer.concat([Buffer.from('TEXT fin=true '), payload]).toString('hex'));
  });
});
