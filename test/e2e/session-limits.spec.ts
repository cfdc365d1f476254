/**
 * Session limits end to end, each an option with a safe default: maxMessageSize
 * (1009) and maxFragments (1008) on reassembled messages of default sessions,
 * maxBufferedBytes (1008) against peers that do not read, on both kinds of
 * session, and idleTimeout (1001) against peers that send nothing.
 */
import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import { Controller } from '@nestjs/common';
import {
  ClosedSendChannelError,
  CloseReason,
  WebSocketRoute,
  WebSocketsModule,
  WebSocketUpgrade,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
  type WebSocketSessionOptions,
} from 'nest-websocket-routes';
import { encodeFrame, RawClient, Opcode } from '../support/raw-client.js';
import { deferred, sleep, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { initApp, PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';

const { TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG } = Opcode;
const KiB = 1024;
const MiB = 1024 * 1024;
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function echo(session: DefaultWebSocketServerSession | WebSocketServerSession) {
  for await (const frame of session.incoming) await session.send(frame);
}

@Controller()
class MessageLimitsController {
  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('echo-wide', { maxMessageSize: 6000, maxFragments: 16 })
  echoWide(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('raw', { raw: true })
  raw(session: WebSocketServerSession) {
    return echo(session);
  }
}

@Controller()
class DefaultsController {
  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  /** Counts the messages and says how many bytes the last one had. */
  @WebSocketRoute('sizes')
  async sizes(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(String(frame.data.length));
  }
}

interface FloodReport {
  attempted: number;
  /** Sends refused (rejected) while the flood ran. */
  refused: number;
  refusedWith: Set<string>;
  /** Sends written to the socket: attempted less refused, when the flood stopped. */
  queued: number;
  /** Index of the first refused send. */
  firstRefused: number;
  rssGrowth: number;
  closeReason?: CloseReason | null;
}
let flood = deferred<FloodReport>();
let slowReaderDone = deferred<string[]>();

/**
 * Sends 1 KiB frames without awaiting them, 1 000 per turn of the event loop,
 * until a send rejects or 100 000 went: what a broadcast to a stopped reader does.
 */
async function floodWithoutAwaiting(session: WebSocketServerSession): Promise<FloodReport> {
  await session.incoming.receive(); // "go": the client stopped reading
  let attempted = 0;
  let refused = 0;
  let firstRefused = -1;
  const refusedWith = new Set<string>();
  const rssBefore = process.memoryUsage().rss;
  let rssMax = rssBefore;
  while (attempted < 100_000 && refused === 0) {
    for (let i = 0; i < 1000; i++) {
      const index = attempted++;
      // Sends past the socket's high-water mark wait for a 'drain' that this reader never gives.
      // A fresh payload each time, as distinct messages would be: queued frames cost memory.
      session.send(Buffer.alloc(KiB, attempted & 0xff)).catch((error: Error) => {
        refused++;
        if (firstRefused < 0 || index < firstRefused) firstRefused = index;
        refusedWith.add(error instanceof ClosedSendChannelError ? 'ClosedSendChannelError' : String(error));
      });
    }
    await new Promise((resolve) => setImmediate(resolve));
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
  }
  await new Promise((resolve) => setImmediate(resolve));
  return { attempted, refused, refusedWith, queued: attempted - refused, firstRefused, rssGrowth: rssMax - rssBefore };
}

@Controller()
class BufferLimitsController {
  @WebSocketRoute('flood')
  async flood(session: DefaultWebSocketServerSession) {
    const report = await floodWithoutAwaiting(session);
    report.closeReason = await within(session.closeReason, 5000, 'closeReason');
    flood.resolve(report);
  }

  @WebSocketRoute('flood-raw', { raw: true, maxBufferedBytes: 64 * KiB })
  async floodRaw(session: WebSocketServerSession) {
    flood.resolve(await floodWithoutAwaiting(session));
  }

  /** Awaits every send to a slow reader: 2 000 frames of 1 KiB, then 8 of 2 MiB (each twice maxBufferedBytes). */
  @WebSocketRoute('slow-reader', { maxBufferedBytes: MiB })
  async slowReader(session: DefaultWebSocketServerSession) {
    const failures: string[] = [];
    try {
      for (let i = 0; i < 2000; i++) await session.send(`small ${i}`.padEnd(KiB, '.'));
      for (let i = 0; i < 8; i++) await session.send(bigFrame(i));
    } catch (error) {
      failures.push(String(error));
    }
    slowReaderDone.resolve(failures);
  }
}

const bigFrame = (i: number) => Buffer.alloc(2 * MiB, i + 1);

let idleReason = deferred<CloseReason | null>();

@Controller()
class IdleController {
  @WebSocketRoute('idle', { idleTimeout: 300 })
  async idle(session: DefaultWebSocketServerSession) {
    await echo(session);
    idleReason.resolve(await session.closeReason);
  }

  @WebSocketRoute('idle-pinged', { idleTimeout: 300, pingInterval: 100 })
  idlePinged(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('idle-raw', { raw: true, idleTimeout: 300 })
  idleRaw(session: WebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('no-idle')
  noIdle(session: DefaultWebSocketServerSession) {
    return echo(session);
  }
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

/** The frames of one fragmented message: `count` frames sharing `payload`, the last with fin. */
function fragments(opcode: number, count: number, payload: Buffer, fin = true): Buffer {
  const size = Math.ceil(payload.length / count);
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    frames.push(
      encodeFrame({
        opcode: i === 0 ? opcode : CONTINUATION,
        payload: payload.subarray(i * size, (i + 1) * size),
        fin: fin && i === count - 1,
      }),
    );
  }
  return Buffer.concat(frames);
}

describe.each(PLATFORMS)('on %s', (platform) => {
  const connect = async (t: TestApp, path: string) => clients.track(await RawClient.connect(t.port, path));

  describe('maxBufferedBytes', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([BufferLimitsController], { closeTimeout: 10_000 }, [], { platform })));
    afterAll(() => t.close());
    beforeEach(() => {
      flood = deferred();
      slowReaderDone = deferred();
    });

    it('closes a default session with 1008 when the peer stops reading while sends are not awaited (default 32 MiB)', async () => {
      const client = await connect(t, '/flood');
      client.socket.pause();
      client.send({ opcode: TEXT, payload: 'go' });
      const report = await within(flood.promise, 20_000, 'the flood to stop');

      // The send that found more than 16 MiB queued, and every one after it, rejected.
      expect(report.refused).toBeGreaterThan(0);
      expect([...report.refusedWith]).toEqual(['ClosedSendChannelError']);
      // Every send from the first refused one on was refused too.
      expect(report.firstRefused).toBe(report.queued);
      expect(report.attempted).toBeLessThan(100_000);
      // 32 MiB in our buffer, plus what the kernel's socket buffers took: far from 100 000 frames.
      expect(report.queued * KiB).toBeGreaterThanOrEqual(32 * MiB);
      expect(report.queued * KiB).toBeLessThan(64 * MiB);
      // Loose: 100 000 queued frames cost about 140 MB. Meaningful on the first platform: RSS seldom shrinks.
      expect(report.rssGrowth).toBeLessThan(100 * 1000 * 1000);
      expect(report.closeReason).toMatchObject({ code: 1008 });

      // Once the client reads: every accepted frame, then the Close.
      client.socket.resume();
      let frames = 0;
      let frame = await client.readFrame();
      while (frame !== null && frame.opcode === BINARY) {
        frames++;
        frame = await client.readFrame();
      }
      expect(frames).toBe(report.queued);
      expect(frame!.opcode).toBe(CLOSE);
      expect(frame!.payload.readUInt16BE(0)).toBe(1008);
      expect(await client.waitForEnd()).toBe(true);
    });

    it('closes a raw session with 1008 too (per-route maxBufferedBytes 64 KiB)', async () => {
      const client = await connect(t, '/flood-raw');
      client.socket.pause();
      client.send({ opcode: TEXT, payload: 'go' });
      const report = await within(flood.promise, 20_000, 'the flood to stop');
      expect(report.refused).toBeGreaterThan(0);
      expect(report.queued * KiB).toBeLessThan(32 * MiB);
      client.socket.resume();
      expect((await client.readClose())?.code).toBe(1008);
      expect(await client.waitForEnd()).toBe(true);
    });

    it('keeps an awaiting handler and a slow reader open, losing nothing, even with frames larger than the limit', async () => {
      const client = await connect(t, '/slow-reader');
      // Reads in bursts: 40 ms paused, 10 ms reading.
      client.socket.pause();
      let reading = false;
      const toggle = setInterval(() => {
        reading = !reading;
        if (reading) client.socket.resume();
        else client.socket.pause();
      }, 25);
      try {
        for (let i = 0; i < 2000; i++) {
          const frame = await client.readFrame(10_000);
          expect(frame?.payload.toString()).toBe(`small ${i}`.padEnd(KiB, '.'));
        }
        for (let i = 0; i < 8; i++) {
          const frame = await client.readFrame(10_000);
          expect(frame?.opcode).toBe(BINARY);
          expect(sha256(frame!.payload)).toBe(sha256(bigFrame(i)));
        }
      } finally {
        clearInterval(toggle);
        client.socket.resume();
      }
      expect(await slowReaderDone.promise).toEqual([]);
      expect((await client.readClose())?.code).toBe(1000);
    }, 60_000);
  });

  describe('maxMessageSize and maxFragments (module: maxFrameSize 8192, maxMessageSize 4096, maxFragments 8)', () => {
    let t: TestApp;
    beforeAll(
      async () =>
        (t = await startApp([MessageLimitsController], { maxFrameSize: 8192, maxMessageSize: 4096, maxFragments: 8 }, [], { platform })),
    );
    afterAll(() => t.close());

    it('echoes a message of maxMessageSize bytes in maxFragments fragments', async () => {
      const client = await connect(t, '/echo');
      const message = randomBytes(4096);
      client.write(fragments(BINARY, 8, message));
      const echoed = await client.readFrame();
      expect(echoed).toMatchObject({ opcode: BINARY, fin: true });
      expect(echoed!.payload.equals(message)).toBe(true);
    });

    it('closes 1009 when fragments add up to one byte more than maxMessageSize', async () => {
      const client = await connect(t, '/echo');
      client.write(fragments(TEXT, 3, Buffer.alloc(4097, 'x')));
      const frames = await client.readAll();
      expect(frames.map((frame) => frame.opcode)).toEqual([CLOSE]);
      expect(frames[0].payload.readUInt16BE(0)).toBe(1009);
      expect(frames[0].payload.toString('utf8', 2)).toContain('maxMessageSize');
    });

    it('closes 1009 on a single frame within maxFrameSize but above maxMessageSize', async () => {
      const client = await connect(t, '/echo');
      client.send({ opcode: BINARY, payload: randomBytes(4097) });
      expect(await client.readClose()).toEqual({ code: 1009, reason: 'Message exceeds maxMessageSize 4096' });
      expect(await client.waitForEnd()).toBe(true);
    });

    it('closes 1008 on one fragment more than maxFragments, empty ones included, before the message ends', async () => {
      const client = await connect(t, '/echo');
      // Nine empty frames, none with fin: bytes alone would never stop them.
      client.write(fragments(TEXT, 9, Buffer.alloc(0), false));
      expect(await client.readClose()).toEqual({ code: 1008, reason: 'Message exceeds maxFragments 8' });
      expect(await client.waitForEnd()).toBe(true);
    });

    it('takes per-route values over the module-wide ones', async () => {
      const client = await connect(t, '/echo-wide');
      const message = randomBytes(6000);
      client.write(fragments(BINARY, 16, message));
      expect((await client.readFrame())!.payload.equals(message)).toBe(true);
      client.write(fragments(BINARY, 17, randomBytes(17)));
      expect((await client.readClose())?.code).toBe(1008);
    });

    it('does not apply to raw sessions, which pass each fragment on as it came', async () => {
      const client = await connect(t, '/raw');
      const message = randomBytes(20 * 1024);
      client.write(fragments(BINARY, 20, message));
      const frames: Buffer[] = [];
      for (let i = 0; i < 20; i++) {
        const frame = await client.readFrame();
        expect(frame).toMatchObject({ opcode: i === 0 ? BINARY : CONTINUATION, fin: i === 19 });
        frames.push(frame!.payload);
      }
      expect(Buffer.concat(frames).equals(message)).toBe(true);
    });
  });

  describe('maxMessageSize follows maxFrameSize when not set (module: maxFrameSize 1000)', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([DefaultsController], { maxFrameSize: 1000 }, [], { platform })));
    afterAll(() => t.close());

    it('bounds reassembled messages by maxFrameSize, as before maxMessageSize existed', async () => {
      const client = await connect(t, '/sizes');
      client.write(fragments(BINARY, 4, randomBytes(1000)));
      expect((await client.readFrame())!.payload.toString()).toBe('1000');
      client.write(fragments(BINARY, 4, randomBytes(1001)));
      expect(await client.readClose()).toEqual({ code: 1009, reason: 'Message exceeds maxMessageSize 1000' });
    });
  });

  describe('idleTimeout', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([IdleController], {}, [], { platform })));
    afterAll(() => t.close());
    beforeEach(() => (idleReason = deferred()));

    it('closes a quiet default session with 1001 after idleTimeout', async () => {
      const started = Date.now();
      const client = await connect(t, '/idle');
      expect(await client.readClose(3000)).toEqual({ code: 1001, reason: 'Idle timeout' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(280);
      expect(await client.waitForEnd()).toBe(true);
      expect(await within(idleReason.promise, 3000, 'closeReason')).toMatchObject({ code: 1001, message: 'Idle timeout' });
    });

    it('keeps a session whose peer sends more often than idleTimeout, then closes it once the peer falls quiet', async () => {
      const client = await connect(t, '/idle');
      for (let i = 0; i < 12; i++) {
        client.send({ opcode: TEXT, payload: `tick ${i}` });
        expect(await client.readFrame()).toMatchObject({ opcode: TEXT, payload: Buffer.from(`tick ${i}`) });
        await sleep(100);
      }
      const quietSince = Date.now();
      expect((await client.readClose(3000))?.code).toBe(1001);
      expect(Date.now() - quietSince).toBeGreaterThanOrEqual(100);
    });

    it('counts pongs as activity: a peer answering pings stays open without sending data', async () => {
      const client = await connect(t, '/idle-pinged');
      const until = Date.now() + 1200;
      while (Date.now() < until) {
        const frame = await client.readFrame();
        expect(frame?.opcode).toBe(PING);
        client.send({ opcode: PONG, payload: frame!.payload });
      }
      client.send({ opcode: TEXT, payload: 'still here' });
      let frame = await client.readFrame();
      while (frame?.opcode === PING) frame = await client.readFrame();
      expect(frame?.payload.toString()).toBe('still here');
    });

    it('closes a quiet raw session with 1001 too', async () => {
      const client = await connect(t, '/idle-raw');
      expect(await client.readClose(3000)).toEqual({ code: 1001, reason: 'Idle timeout' });
      expect(await client.waitForEnd()).toBe(true);
    });

    it('is off by default: a session quiet for 1 s is kept', async () => {
      const client = await connect(t, '/no-idle');
      await sleep(1000);
      client.send({ opcode: TEXT, payload: 'late' });
      expect((await client.readFrame())?.payload.toString()).toBe('late');
    });
  });
});

// Last: these allocate hundreds of MB, which would hide the RSS growth the flood test measures.
describe.each(PLATFORMS)('on %s', (platform) => {
  const connect = async (t: TestApp, path: string) => clients.track(await RawClient.connect(t.port, path));

  describe('defaults (no options): maxMessageSize 64 MiB, maxFragments 65 536', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([DefaultsController], {}, [], { platform })));
    afterAll(() => t.close());

    it('reassembles 65 536 fragments and closes 1008 on 65 537', async () => {
      const client = await connect(t, '/sizes');
      client.write(fragments(TEXT, 65_536, Buffer.alloc(65_536, 'y')));
      expect((await client.readFrame(15_000))!.payload.toString()).toBe('65536');
      client.write(fragments(TEXT, 65_537, Buffer.alloc(0), false));
      expect(await client.readClose(15_000)).toEqual({ code: 1008, reason: 'Message exceeds maxFragments 65536' });
    });

    it('reassembles a 64 MiB message and closes 1009 on one byte more', async () => {
      const client = await connect(t, '/sizes');
      const message = Buffer.alloc(64 * MiB, 'z');
      client.write(fragments(BINARY, 4, message));
      expect((await client.readFrame(15_000))!.payload.toString()).toBe(String(64 * MiB));
      client.write(fragments(BINARY, 4, message, false));
      client.send({ opcode: CONTINUATION, payload: 'z', fin: true });
      expect((await client.readClose(15_000))?.code).toBe(1009);
    }, 60_000);
  });
});

describe('limit options are validated, naming the option', () => {
  const INVALID: Array<[WebSocketSessionOptions, string]> = [
    [{ maxMessageSize: 0 }, 'maxMessageSize'],
    [{ maxFragments: 0 }, 'maxFragments'],
    [{ maxFragments: 1.5 }, 'maxFragments'],
    [{ maxBufferedBytes: 0 }, 'maxBufferedBytes'],
    [{ maxBufferedBytes: 2 ** 31 }, 'maxBufferedBytes'],
    [{ idleTimeout: -1 }, 'idleTimeout'],
    [{ idleTimeout: '5s' as unknown as number }, 'idleTimeout'],
  ];

  it.each(INVALID)('forRoot(%j) fails at startup naming %s', async (options, name) => {
    await expect(initApp([], [WebSocketsModule.forRoot(options)])).rejects.toThrow(`"${name}"`);
  });

  it.each(INVALID)('@WebSocketRoute(path, %j) fails at startup naming %s', async (options, name) => {
    @Controller()
    class BadRoute {
      @WebSocketRoute('bad', options)
      handle() {
        return undefined;
      }
    }
    await expect(initApp([BadRoute])).rejects.toThrow(`"${name}"`);
  });

  it.each(INVALID)('new WebSocketUpgrade(%j) throws naming %s', (options, name) => {
    expect(() => new WebSocketUpgrade(options, () => undefined)).toThrow(`"${name}"`);
  });

  it('accepts the smallest values', () => {
    expect(() => new WebSocketUpgrade({ maxMessageSize: 1, maxFragments: 1, maxBufferedBytes: 1, idleTimeout: 0 }, () => undefined)).not.toThrow();
  });
});
