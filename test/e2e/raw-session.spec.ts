/**
 * Raw sessions (`raw: true`, Ktor's `webSocketRaw`) end to end: every frame
 * reaches `incoming` as it came off the wire and nothing is automatic, while
 * protocol violations and `maxFrameSize` are still enforced.
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Controller } from '@nestjs/common';
import { Frame, FrameType, WebSocketRoute, type WebSocketServerSession } from 'nest-websocket-routes';
import { closePayload, RawClient, Opcode } from '../support/raw-client.js';
import { deferred } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';

const { TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG } = Opcode;

const FLUSHED_FRAME_SIZE = 8 * 1024 * 1024;

let handlerReturned = deferred();

@Controller('raw')
class RawController {
  /** Keeps every frame until the text "dump", then sends them all back unchanged. */
  @WebSocketRoute('dump', { raw: true })
  async dump(session: WebSocketServerSession) {
    const frames: Frame[] = [];
    for await (const frame of session.incoming) {
      if (frame.frameType === FrameType.TEXT && frame.fin && frame.readText() === 'dump') {
        for (const kept of frames) await session.send(kept);
        frames.length = 0;
      } else {
        frames.push(frame);
      }
    }
  }

  /** Describes every frame until the text "report", then sends the descriptions as JSON. */
  @WebSocketRoute('inspect', { raw: true })
  async inspect(session: WebSocketServerSession) {
    const seen: Array<{ type: string; fin: boolean; data: string }> = [];
    for await (const frame of session.incoming) {
      if (frame.frameType === FrameType.TEXT && frame.fin && frame.readText() === 'report') {
        await session.send(JSON.stringify(seen));
        seen.length = 0;
      } else {
        seen.push({ type: frame.frameType.name, fin: frame.fin, data: frame.data.toString('latin1') });
      }
    }
  }

  /** On the peer's Close, says what it saw in a Text frame and returns, without sending a Close. */
  @WebSocketRoute('on-close', { raw: true })
  async onClose(session: WebSocketServerSession) {
    for await (const frame of session.incoming) {
      if (frame.frameType === FrameType.CLOSE) {
        const reason = frame.readReason();
        await session.send(`closed:${reason?.code}:${reason?.message}`);
        return;
      }
    }
  }

  /**
   * Queues three 8 MiB frames without awaiting them, then returns at once. The close timeout (how long the
   * queued data may take to leave) is long, so a client slowed by a loaded machine still gets all of it.
   */
  @WebSocketRoute('send-and-return', { raw: true, closeTimeout: 25_000 })
  sendAndReturn(session: WebSocketServerSession) {
    for (let i = 0; i < 3; i++) {
      session.send(new Frame.Binary(Buffer.alloc(FLUSHED_FRAME_SIZE, i + 1))).catch(() => undefined);
    }
    handlerReturned.resolve();
  }

  @WebSocketRoute('throw', { raw: true })
  async throwAtOnce(session: WebSocketServerSession) {
    await session.incoming.receive();
    throw new Error('raw handler failed on purpose');
  }

  @WebSocketRoute('limited', { raw: true, maxFrameSize: 100 })
  async limited(session: WebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  /** A pingInterval is set, yet a raw session never pings. */
  @WebSocketRoute('no-pinger', { raw: true, pingInterval: 50, timeout: 50 })
  async noPinger(session: WebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

describe.each(PLATFORMS)('on %s', (platform) => {
  describe('raw session', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([RawController], {}, [], { platform })));
    afterAll(() => t.close());

    const connect = async (path: string) => {
      const client = await RawClient.connect(t.port, path);
      clients.track(client);
      return client;
    };

    it('does not answer a ping, and hands it to the handler as a Ping frame', async () => {
      const client = await connect('/raw/dump');
      client.send({ opcode: PING, payload: 'no pong please' });
      await expect(client.readFrame(500)).rejects.toThrow('Timed out');

      client.send({ opcode: TEXT, payload: 'dump' });
      const frame = await client.readFrame();
      expect(frame).toMatchObject({ opcode: PING, fin: true });
      expect(frame!.payload.toString()).toBe('no pong please');
    });

    it('shows each fragment and the ping between them, in order, continuations typed as their message', async () => {
      const client = await connect('/raw/inspect');
      client.send({ opcode: TEXT, payload: 'ABC', fin: false });
      client.send({ opcode: PING, payload: 'p' });
      client.send({ opcode: CONTINUATION, payload: '12', fin: false });
      client.send({ opcode: CONTINUATION, payload: '3', fin: true });
      client.send({ opcode: TEXT, payload: 'report' });
      const frame = await client.readFrame();
      expect(frame!.opcode).toBe(TEXT);
      expect(JSON.parse(frame!.payload.toString())).toEqual([
        { type: 'TEXT', fin: false, data: 'ABC' },
        { type: 'PING', fin: true, data: 'p' },
        { type: 'TEXT', fin: false, data: '12' },
        { type: 'TEXT', fin: true, data: '3' },
      ]);
    });

    it('types binary continuations as BINARY and shows pongs', async () => {
      const client = await connect('/raw/inspect');
      client.send({ opcode: BINARY, payload: 'x', fin: false });
      client.send({ opcode: CONTINUATION, payload: 'y', fin: true });
      client.send({ opcode: PONG, payload: 'unsolicited' });
      client.send({ opcode: TEXT, payload: 'report' });
      const frame = await client.readFrame();
      expect(JSON.parse(frame!.payload.toString())).toEqual([
        { type: 'BINARY', fin: false, data: 'x' },
        { type: 'BINARY', fin: true, data: 'y' },
        { type: 'PONG', fin: true, data: 'unsolicited' },
      ]);
    });

    it('hands the peer Close to the handler and sends no Close reply of its own', async () => {
      const client = await connect('/raw/on-close');
      client.send({ opcode: CLOSE, payload: closePayload(4002, 'bye') });
      const frames = await client.readAll();
      expect(frames.map((frame) => [frame.opcode, frame.payload.toString()])).toEqual([[TEXT, 'closed:4002:bye']]);
    });

    it('flushes what the handler queued when it returns, then ends TCP without a Close', async () => {
      handlerReturned = deferred();
      const client = await connect('/raw/send-and-return');
      // Not reading until the handler returned keeps most of the 24 MiB queued in the server when it does.
      client.socket.pause();
      await handlerReturned.promise;
      await new Promise((resolve) => setTimeout(resolve, 100));
      client.socket.resume();
      const frames = await client.readAll();
      expect(frames.map((frame) => frame.opcode)).toEqual([BINARY, BINARY, BINARY]);
      frames.forEach((frame, i) => {
        expect(frame.payload.length).toBe(FLUSHED_FRAME_SIZE);
        expect(frame.payload.equals(Buffer.alloc(FLUSHED_FRAME_SIZE, i + 1))).toBe(true);
      });
    });

    it('never pings, even with pingInterval set', async () => {
      const client = await connect('/raw/no-pinger');
      await expect(client.readFrame(500)).rejects.toThrow('Timed out');
      client.send({ opcode: TEXT, payload: 'alive' });
      const frame = await client.readFrame();
      expect(frame).toMatchObject({ opcode: TEXT });
      expect(frame!.payload.toString()).toBe('alive');
    });

    it('closes 1011 when the handler throws', async () => {
      const client = await connect('/raw/throw');
      client.send({ opcode: TEXT, payload: 'trigger' });
      expect((await client.readClose())?.code).toBe(1011);
      expect(await client.waitForEnd()).toBe(true);
    });

    describe('still enforces the protocol', () => {
      it('closes 1002 on a reserved opcode', async () => {
        const client = await connect('/raw/dump');
        client.send({ opcode: 3, payload: 'x' });
        expect((await client.readClose())?.code).toBe(1002);
        expect(await client.waitForEnd()).toBe(true);
      });

      it('closes 1002 on an unmasked frame', async () => {
        const client = await connect('/raw/dump');
        client.send({ opcode: TEXT, payload: 'plain', mask: false });
        expect((await client.readClose())?.code).toBe(1002);
        expect(await client.waitForEnd()).toBe(true);
      });

      it('closes 1002 on a control frame over 125 bytes', async () => {
        const client = await connect('/raw/dump');
        client.send({ opcode: PING, payload: randomBytes(126) });
        expect((await client.readClose())?.code).toBe(1002);
        expect(await client.waitForEnd()).toBe(true);
      });

      it('accepts a frame of maxFrameSize and closes 1009 on one byte more', async () => {
        const client = await connect('/raw/limited');
        const fits = randomBytes(100);
        client.send({ opcode: BINARY, payload: fits });
        expect((await client.readFrame())!.payload.equals(fits)).toBe(true);
        client.send({ opcode: BINARY, payload: randomBytes(101) });
        expect((await client.readClose())?.code).toBe(1009);
        expect(await client.waitForEnd()).toBe(true);
      });
    });
  });
});
