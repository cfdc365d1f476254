import 'reflect-metadata';
import { Controller, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import WebSocket from 'ws';
import { WebSocketRoute, WebSocketsModule, type DefaultWebSocketServerSession } from 'nest-websocket-routes';

@Controller('ws')
class EchoController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

describe('smoke', () => {
  let app: INestApplication;
  beforeAll(async () => {
    const moduleRef = await Test.createTestingModule({ imports: [WebSocketsModule.forRoot()], controllers: [EchoController] }).compile();
    app = moduleRef.createNestApplication();
    await app.listen(0, '127.0.0.1');
  });
  afterAll(() => app.close());

  it('echoes', async () => {
    const port = app.getHttpServer().address().port;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/echo`);
    await new Promise((r) => ws.once('open', r));
    ws.send('hello');
    const msg = await new Promise<string>((r) => ws.once('message', (d) => r(d.toString())));
    expect(msg).toBe('hello');
    ws.close(1000);
    const code = await new Promise<number>((r) => ws.once('close', (c) => r(c)));
    expect(code).toBe(1000);
  });
});
