/**
 * Session lifecycle end to end: application shutdown (1001, handlers given
 * `shutdownTimeout`, the rest terminated), isolation between sessions, and
 * backpressure both ways (a handler that does not read stops the socket
 * being read; a peer that does not read stalls `send`).
 */
import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import {
  CloseReason,
  Frame,
  FrameType,
  WebSocketRoute,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { closePayload, RawClient, Opcode } from '../support/raw-client.js';
import { deferred, sleep, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type Platform, type TestApp } from '../support/nest-app.js';
import { WsClient } from '../support/ws-client.js';

const { CLOSE, BINARY } = Opcode;
const MiB = 1024 * 1024;
const BULK_FRAMES = 64;

/** Polls `read` until its value stays the same for `quietMs` (at most `maxMs`); returns that value. */
async function settled(read: () => number, quietMs = 500, maxMs = 8000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let value = read();
  let since = Date.now();
  while (Date.now() < deadline) {
    await sleep(50);
    const next = read();
    if (next !== value) {
      value = next;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return value;
    }
  }
  throw new Error(`Value never settled (last ${value})`);
}

/** What handlers report to the tests; reset before each test. */
let finished: string[] = [];
/** 100 two-byte characters: 200 bytes, which a Close frame cannot carry. */
const LONG_REASON = 'é'.repeat(100);
/** LONG_REASON cut on a character boundary to the 123 bytes a Close frame carries: 61 characters, 122 bytes. */
const FITTED_REASON = 'é'.repeat(61);
let readerGate = deferred();
let completedSends = 0;

@Controller()
class LifecycleController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
    finished.push(`default:${(await session.closeReason)?.code}`);
  }

  /** Runs its own close sequence: answers the peer's Close and returns. */
  @WebSocketRoute('raw-echo', { raw: true })
  async rawEcho(session: WebSocketServerSession) {
    for await (const frame of session.incoming) {
      if (frame.frameType === FrameType.CLOSE) {
        finished.push(`raw:${frame.readReason()?.code}`);
        return;
      }
      await session.send(frame);
    }
  }

  @WebSocketRoute('stuck')
  async stuck() {
    await new Promise(() => undefined);
  }

  @WebSocketRoute('raw-stuck', { raw: true })
  async rawStuck() {
    await new Promise(() => undefined);
  }

  /** Reads nothing until the test opens the gate, then counts the bytes of every message. */
  @WebSocketRoute('slow-reader')
  async slowReader(session: DefaultWebSocketServerSession) {
    await readerGate.promise;
    let bytes = 0;
    for await (const frame of session.incoming) {
      bytes += frame.data.length;
      if (bytes === BULK_FRAMES * MiB) await session.send(`got ${bytes}`);
    }
  }

  /** Returns at once without reading what the client sent. */
  @WebSocketRoute('ignore-all')
  async ignoreAll() {
    await readerGate.promise;
  }

  @WebSocketRoute('bad-close')
  async badClose(session: DefaultWebSocketServerSession) {
    await session.close(new CloseReason(1006)).catch((error: Error) => finished.push(error.name));
    await session.close(new CloseReason(4000, LONG_REASON));
    finished.push(`default:${(await session.closeReason)?.message.length}`);
  }

  @WebSocketRoute('raw-long-close', { raw: true })
  async rawLongClose(session: WebSocketServerSession) {
    await session.close(new CloseReason(4000, LONG_REASON));
  }

  /** Sends 64 frames of 1 MiB, counting the sends that resolved. */
  @WebSocketRoute('flood')
  async flood(session: DefaultWebSocketServerSession) {
    for (let i = 0; i < BULK_FRAMES; i++) {
      await session.send(new Frame.Binary(Buffer.alloc(MiB, i)));
      completedSends++;
    }
  }
}

let t: TestApp | undefined;
let appClosed = false;
let platform: Platform = 'express';
const clients = new ClientTracker();
const track = <T extends RawClient | WsClient>(client: T): T => clients.track(client);

async function start(options: Parameters<typeof startApp>[1]) {
  t = await startApp([LifecycleController], options, [], { platform });
  appClosed = false;
  return t;
}

/** Closes the app once; tests that test the close call it themselves. */
function closeApp(): Promise<void> {
  if (t === undefined || appClosed) return Promise.resolve();
  appClosed = true;
  return t.close();
}

beforeEach(() => {
  finished = [];
  readerGate = deferred();
  completedSends = 0;
});

afterEach(async () => {
  readerGate.resolve();
  clients.dropAll();
  await closeApp();
  t = undefined;
});

describe.each(PLATFORMS)('on %s', (onPlatform) => {
  beforeAll(() => (platform = onPlatform));

  describe('application shutdown', () => {
    it('closes every default and raw session with 1001 and finishes once their handlers returned', async () => {
      // A long shutdownTimeout: app.close() must finish because the handlers returned, not because time ran out.
      const app = await start({ shutdownTimeout: 20_000 });
      const ws = track(await WsClient.connect(app.url('/echo')));
      const raw = track(await RawClient.connect(app.port, '/raw-echo'));
      ws.ws.send('ping');
      expect(await ws.nextText()).toBe('ping');

      const closing = closeApp();
      expect(await raw.readClose()).toMatchObject({ code: 1001 });
      raw.send({ opcode: CLOSE, payload: closePayload(1001) });
      expect((await ws.waitClosed()).code).toBe(1001);

      await within(closing, 5000, 'app.close()');
      expect(await raw.waitForEnd()).toBe(true);
      expect(finished.sort()).toEqual(['default:1001', 'raw:1001']);
    });

    it('refuses new upgrades with 503 while shutting down', async () => {
      const app = await start({ shutdownTimeout: 1000 });
      const stuck = track(await RawClient.connect(app.port, '/stuck'));
      const closing = closeApp();
      expect((await stuck.readClose())?.code).toBe(1001);

      const { client, response } = await RawClient.open(app.port, '/echo');
      track(client);
      expect(response.status).toBe(503);
      await within(closing, 5000, 'app.close()');
    });

    it('terminates handlers that never return after shutdownTimeout, and app.close() resolves', async () => {
      const app = await start({ shutdownTimeout: 300 });
      // Neither client answers the Close, and neither handler ever returns.
      const stuck = track(await RawClient.connect(app.port, '/stuck'));
      const rawStuck = track(await RawClient.connect(app.port, '/raw-stuck'));

      const closing = closeApp();
      expect((await stuck.readClose())?.code).toBe(1001);
      expect((await rawStuck.readClose())?.code).toBe(1001);
      expect(await stuck.waitForEnd()).toBe(true);
      expect(await rawStuck.waitForEnd()).toBe(true);
      await within(closing, 5000, 'app.close()');
    });

    it('resolves app.close() when a handler never returns though its client answered the Close', async () => {
      const app = await start({ shutdownTimeout: 300 });
      const ws = track(await WsClient.connect(app.url('/stuck')));
      const closing = closeApp();
      expect((await ws.waitClosed()).code).toBe(1001);
      await within(closing, 5000, 'app.close()');
    });
  });

  describe('isolation', () => {
    it('keeps a session echoing while another one breaks the protocol', async () => {
      const app = await start({});
      const good = track(await WsClient.connect(app.url('/echo')));
      const bad = track(await RawClient.connect(app.port, '/echo'));
      good.ws.send('before');
      expect(await good.nextText()).toBe('before');

      bad.send({ opcode: 3, payload: 'x' });
      expect((await bad.readClose())?.code).toBe(1002);
      expect(await bad.waitForEnd()).toBe(true);

      for (let i = 0; i < 10; i++) good.ws.send(`after ${i}`);
      for (let i = 0; i < 10; i++) expect(await good.nextText()).toBe(`after ${i}`);
    });
  });

  describe('backpressure', () => {
    it('stops reading the socket while the handler does not read incoming', async () => {
      const app = await start({});
      const client = track(await WsClient.connect(app.url('/slow-reader')));
      for (let i = 0; i < BULK_FRAMES; i++) client.ws.send(Buffer.alloc(MiB, i));

      // The server stopped reading: most of the 64 MiB is still waiting in the client's socket buffer.
      const stalledAt = await settled(() => client.ws.bufferedAmount);
      expect(stalledAt).toBeGreaterThan(32 * MiB);

      // Reading resumes once the handler reads: everything arrives.
      readerGate.resolve();
      expect(await client.nextText(20_000)).toBe(`got ${BULK_FRAMES * MiB}`);
      expect(client.ws.bufferedAmount).toBe(0);
    });

    it('stalls send while the peer does not read', async () => {
      const app = await start({});
      const client = track(await RawClient.connect(app.port, '/flood'));
      client.socket.pause();

      const stalledAt = await settled(() => completedSends);
      expect(stalledAt).toBeLessThan(BULK_FRAMES / 2);

      client.socket.resume();
      for (let i = 0; i < BULK_FRAMES; i++) {
        const frame = await client.readFrame(10_000);
        expect(frame).toMatchObject({ opcode: BINARY, fin: true });
        expect(frame!.payload.length).toBe(MiB);
        expect(frame!.payload[0]).toBe(i % 256);
        expect(frame!.payload[MiB - 1]).toBe(i % 256);
      }
      expect(completedSends).toBe(BULK_FRAMES);
      expect((await client.readClose())?.code).toBe(1000);
    });
  });

  describe('closing with unread messages', () => {
    it("still reads the peer's Close when incoming is full, and ends TCP without waiting for closeTimeout", async () => {
      const app = await start({ closeTimeout: 60_000 });
      const client = track(await RawClient.connect(app.port, '/ignore-all'));
      // 63 messages queued, proven by the pong to a ping parsed after them; then enough to fill `incoming`.
      for (let i = 0; i < 63; i++) client.send({ opcode: Opcode.TEXT, payload: `unread ${i}` });
      client.send({ opcode: Opcode.PING, payload: 'sync' });
      expect(await client.readFrame()).toMatchObject({ opcode: Opcode.PONG });
      for (let i = 63; i < 200; i++) client.send({ opcode: Opcode.TEXT, payload: `unread ${i}` });
      await sleep(200);
      readerGate.resolve();
      expect((await client.readClose())?.code).toBe(1000);
      client.send({ opcode: CLOSE, payload: closePayload(1000) });
      // Bounded well below closeTimeout: only a Close that was read lets the server end TCP this early.
      expect(await client.waitForEnd(10_000)).toBe(true);
    });
  });

  describe('close reasons that do not fit the wire', () => {
    it('rejects close() with a reserved code, sending nothing, and cuts a reason over 123 bytes on a character boundary', async () => {
      const app = await start({});
      const client = track(await RawClient.connect(app.port, '/bad-close'));
      expect(await client.readClose()).toEqual({ code: 4000, reason: FITTED_REASON });
      client.send({ opcode: CLOSE, payload: closePayload(4000) });
      expect(await client.waitForEnd(5_000)).toBe(true);
      expect(finished).toEqual(['RangeError', `default:${FITTED_REASON.length}`]);
    });

    it('cuts the long close reason of a raw session the same way', async () => {
      const app = await start({});
      const client = track(await RawClient.connect(app.port, '/raw-long-close'));
      expect(await client.readClose()).toEqual({ code: 4000, reason: FITTED_REASON });
    });
  });
});
