import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import WebSocket from 'ws';
import { WebSocketRoute, type DefaultWebSocketServerSession, type WebSocketServerSession } from 'nest-websocket-routes';
import { RawClient } from '../support/raw-client.js';
import { startApp, type TestApp } from '../support/nest-app.js';

@Controller('ws')
class EchoController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('raw', { raw: true })
  async raw(session: WebSocketServerSession) {
    for await (const frame of session.incoming) {
      await session.send(frame);
      if (frame.frameType.opcode === 8) return;
    }
  }
}

describe('smoke', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startApp([EchoController])));
  afterAll(() => t.close());

  it('echoes through ws', async () => {
    const ws = new WebSocket(t.url('/ws/echo'));
    await new Promise((r) => ws.once('open', r));
    ws.send('hello');
    const msg = await new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
    expect(msg).toBe('hello');
    ws.close(1000);
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(1000);
  });

  it('raw echoes a ping instead of answering it', async () => {
    const client = await RawClient.connect(t.port, '/ws/raw');
    client.send({ opcode: 0x9, payload: 'p' });
    const frame = await client.readFrame();
    expect(frame).toMatchObject({ opcode: 0x9 });
    expect(frame!.payload.toString()).toBe('p');
    client.destroy();
  });
});
