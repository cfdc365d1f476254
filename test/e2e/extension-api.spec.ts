/**
 * The extension API end to end, with extensions written here against the
 * public types: `x-xor` (RSV2, sync) XORs every data frame with a key the
 * client offers; `x-slow` (RSV3) shifts every byte by one, sometimes at once,
 * sometimes after a microtask, a setImmediate or a timer, so frames finish
 * out of order unless the session keeps them in order. Checked: negotiation
 * only when offered (and what the factory saw: its own offers, in order, and
 * the session's limits), the 101 answering what the extension returns,
 * frames processed both ways, one at a time, in order (Close and TCP end
 * after them), the order of several extensions with permessage-deflate,
 * failures (the extension's close code, 1011 for other errors), dispose once
 * per connection however it ends, route lists replacing the module's, and
 * startup failures: an RSV bit claimed twice, a name installed twice, invalid
 * `deflate` / `extensions` options, each naming what is wrong.
 */
import 'reflect-metadata';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Controller } from '@nestjs/common';
import * as api from 'nest-websocket-routes';
import {
  Frame,
  WebSocketExtensionHeader,
  WebSocketRoute,
  WebSocketsModule,
  WebSocketUpgrade,
  type DefaultWebSocketServerSession,
  type WebSocketExtension,
  type WebSocketExtensionFactory,
  type WebSocketExtensionLimits,
  type WebSocketExtensionOptions,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { WebSocketProtocolError } from '../../lib/protocol/protocol-error.js';
import { sleep, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { deflateMessage, inflateAlone } from '../support/deflate.js';
import { initApp, PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { encodeFrame, Opcode, RawClient, type FrameSpec, type RawFrame } from '../support/raw-client.js';

const { TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG } = Opcode;
const RSV1 = 4;
const RSV2 = 2;
const RSV3 = 1;

const xor = (data: Buffer, key: number) => Buffer.from(data.map((byte) => byte ^ key));
const shift = (data: Buffer, by: number) => Buffer.from(data.map((byte) => (byte + by) & 0xff));

/** What the toy extensions did, for the tests to read. */
const log = {
  negotiations: [] as Array<{ name: string; offers: string[]; limits: WebSocketExtensionLimits }>,
  /** Extension instance ids, one entry per dispose() call. */
  disposed: [] as number[],
  created: [] as number[],
  incoming: [] as string[],
  peakIncoming: 0,
  peakOutgoing: 0,
  reset() {
    this.negotiations = [];
    this.disposed = [];
    this.created = [];
    this.incoming = [];
    this.peakIncoming = 0;
    this.peakOutgoing = 0;
  },
};
let nextId = 1;
/** What `session.extensions` held, per session of the route that records it. */
const sessionExtensions: string[][] = [];

/** `x-xor; key=N`: every data frame XORed with N and marked with RSV2; incoming data frames must carry RSV2. */
class XorExtension implements WebSocketExtension {
  readonly id = nextId++;
  readonly response: WebSocketExtensionHeader;

  constructor(
    readonly factory: WebSocketExtensionFactory,
    private readonly key: number,
  ) {
    this.response = new WebSocketExtensionHeader(factory.name, [`key=${key}`]);
    log.created.push(this.id);
  }

  processOutgoingFrame(frame: Frame): Frame {
    if (frame.frameType.controlFrame) return frame;
    return Frame.byType(frame.frameType, frame.fin, xor(frame.data, this.key), frame.rsv1, true, frame.rsv3);
  }

  processIncomingFrame(frame: Frame): Frame {
    log.incoming.push(`${this.factory.name} ${frame.frameType.name}`);
    if (frame.frameType.controlFrame) return frame;
    if (!frame.rsv2) throw new WebSocketProtocolError(1002, `${this.factory.name}: a data frame without RSV2`);
    return Frame.byType(frame.frameType, frame.fin, xor(frame.data, this.key), frame.rsv1, false, frame.rsv3);
  }

  dispose(): void {
    log.disposed.push(this.id);
  }
}

class XorFactory implements WebSocketExtensionFactory<{ maxKey: number }> {
  readonly rsv1 = false;
  readonly rsv2 = true;
  readonly rsv3 = false;
  readonly config = { maxKey: 255 };

  constructor(readonly name = 'x-xor') {}

  /** The first offer with a `key` from 1 to 255; declines offers without one. */
  negotiate(offers: readonly WebSocketExtensionHeader[], limits: WebSocketExtensionLimits): WebSocketExtension | undefined {
    log.negotiations.push({ name: this.name, offers: offers.map(String), limits });
    for (const offer of offers) {
      const key = offer.parseParameters()?.get('key');
      if (typeof key === 'string' && /^[1-9]\d*$/.test(key) && Number(key) <= this.config.maxKey) return new XorExtension(this, Number(key));
    }
    return undefined;
  }
}

/** How x-slow answers the nth frame: at once, after a timer, a microtask, or a setImmediate. */
function later<T>(n: number, value: () => T): T | Promise<T> {
  switch (n % 4) {
    case 0:
      return value();
    case 1:
      return new Promise((resolve) => setTimeout(() => resolve(value()), 6));
    case 2:
      return Promise.resolve().then(value);
    default:
      return new Promise((resolve) => setImmediate(() => resolve(value())));
  }
}

/** `x-slow`: every data byte +1 going out (RSV3 set), -1 coming in (RSV3 required); sync or async by turns. */
class SlowExtension implements WebSocketExtension {
  readonly id = nextId++;
  readonly response = new WebSocketExtensionHeader('x-slow');
  private incoming = 0;
  private outgoing = 0;
  private inFlightIncoming = 0;
  private inFlightOutgoing = 0;

  constructor(readonly factory: WebSocketExtensionFactory) {
    log.created.push(this.id);
  }

  processOutgoingFrame(frame: Frame): Frame | Promise<Frame> {
    if (frame.frameType.controlFrame) return frame;
    log.peakOutgoing = Math.max(log.peakOutgoing, ++this.inFlightOutgoing);
    return later(this.outgoing++, () => {
      this.inFlightOutgoing--;
      return Frame.byType(frame.frameType, frame.fin, shift(frame.data, 1), frame.rsv1, frame.rsv2, true);
    });
  }

  processIncomingFrame(frame: Frame): Frame | Promise<Frame> {
    if (frame.frameType.controlFrame) return frame;
    log.peakIncoming = Math.max(log.peakIncoming, ++this.inFlightIncoming);
    return later(this.incoming++, () => {
      this.inFlightIncoming--;
      if (!frame.rsv3) throw new WebSocketProtocolError(1002, 'x-slow: a data frame without RSV3');
      return Frame.byType(frame.frameType, frame.fin, shift(frame.data, -1), frame.rsv1, frame.rsv2, false);
    });
  }

  dispose(): void {
    log.disposed.push(this.id);
  }
}

/** A factory of the plain kind: a name, the RSV bits it claims, its negotiation, no config. */
function factory(name: string, bits: Partial<Pick<WebSocketExtensionFactory, 'rsv1' | 'rsv2' | 'rsv3'>>, negotiate: WebSocketExtensionFactory['negotiate']): WebSocketExtensionFactory {
  return { name, rsv1: false, rsv2: false, rsv3: false, ...bits, config: undefined, negotiate };
}

const slowFactory: WebSocketExtensionFactory = factory('x-slow', { rsv3: true }, (offers, limits) => {
  log.negotiations.push({ name: 'x-slow', offers: offers.map(String), limits });
  return new SlowExtension(slowFactory);
});

/** `x-fail; how=…`: incoming data frames fail, in the way the offer asks; with `how=outgoing`, outgoing ones do. */
const failFactory: WebSocketExtensionFactory = factory('x-fail', {}, (offers) => {
  const how = offers[0].parseParameters()?.get('how');
  const id = nextId++;
  log.created.push(id);
  return {
    factory: failFactory,
    response: new WebSocketExtensionHeader('x-fail'),
    processOutgoingFrame: (frame) =>
      how === 'outgoing' && !frame.frameType.controlFrame ? Promise.reject(new Error('x-fail broke on the way out')) : frame,
    processIncomingFrame: (frame) => {
      if (frame.frameType.controlFrame || how === 'outgoing') return frame;
      if (how === 'code') throw new WebSocketProtocolError(1003, 'x-fail: no data accepted');
      if (how === 'async-code') return Promise.reject(new WebSocketProtocolError(1007, 'x-fail: bad data, later'));
      throw new Error('x-fail broke');
    },
    dispose: () => log.disposed.push(id),
  };
});

/** `x-throw`: its negotiate() throws, as a buggy extension's would. */
const throwingFactory = factory('x-throw', {}, () => {
  throw new Error('x-throw cannot negotiate');
});

const xorFactory = new XorFactory();

async function echo(session: DefaultWebSocketServerSession) {
  for await (const frame of session.incoming) await session.send(frame);
}

@Controller()
class ExtensionsController {
  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('limits', { maxMessageSize: 4321 })
  limits(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  /** The module's list replaced by nothing. */
  @WebSocketRoute('none', { extensions: [] })
  none(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  /** The module's list replaced by x-slow alone. */
  @WebSocketRoute('slow', { extensions: [slowFactory] })
  slow(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('xor-and-deflate', { deflate: { threshold: 0 } })
  xorAndDeflate(session: DefaultWebSocketServerSession) {
    sessionExtensions.push(session.extensions.map((extension) => extension.response.toString()));
    return echo(session);
  }

  /** Shrugs off failed sends: only the session itself can close over a failing outgoing extension. */
  @WebSocketRoute('fail', { extensions: [failFactory] })
  async fail(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame).catch(() => undefined);
  }

  /** On "go", 30 numbered messages sent without awaiting, then returns: close 1000 must follow them. */
  @WebSocketRoute('burst', { extensions: [slowFactory] })
  async burst(session: DefaultWebSocketServerSession) {
    await session.incoming.receive();
    for (let i = 0; i < 30; i++) session.send(`message ${i}`).catch(() => undefined);
  }

  @WebSocketRoute('broken-negotiate', { extensions: [throwingFactory] })
  brokenNegotiate(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('throw')
  async throwAfterOne(session: DefaultWebSocketServerSession) {
    await session.incoming.receive();
    throw new Error('handler failed on purpose');
  }
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

async function connect(port: number, path: string, offer?: string): Promise<{ client: RawClient; agreed: string | undefined }> {
  const { client, response } = await RawClient.open(port, path, { 'Sec-WebSocket-Extensions': offer });
  clients.track(client);
  expect(response.status).toBe(101);
  return { client, agreed: response.headers['sec-websocket-extensions'] };
}

/** Waits until the extension was disposed, then a little longer to see it stays at once. */
async function expectDisposedOnce(id: number): Promise<void> {
  await within(
    (async () => {
      while (!log.disposed.includes(id)) await sleep(5);
    })(),
    3000,
    `dispose() of extension ${id}`,
  );
  await sleep(30);
  expect(log.disposed.filter((disposed) => disposed === id)).toEqual([id]);
}

const data = (frame: RawFrame | null) => frame?.payload.toString();

describe.each(PLATFORMS)('on %s', (platform) => {
  let t: TestApp;
  beforeAll(async () => (t = await startApp([ExtensionsController], { extensions: [xorFactory] }, [], { platform })));
  afterAll(() => t.close());
  beforeEach(() => log.reset());

  describe('negotiation', () => {
    it('is not asked without an offer of its name: no header, and RSV2 is a protocol error (1002)', async () => {
      const { client, agreed } = await connect(t.port, '/echo', 'x-other, permessage-deflate');
      expect(agreed).toBeUndefined();
      expect(log.negotiations).toEqual([]);
      client.send({ opcode: TEXT, rsv: RSV2, payload: 'x' });
      expect((await client.readClose())?.code).toBe(1002);
    });

    it('sees only its own offers, in the client’s order, with the session’s limits; the 101 answers what it returned', async () => {
      const { agreed } = await connect(t.port, '/echo', 'x-xor; key=999, x-other; key=1, x-xor; key=42, x-xor; key=7');
      expect(agreed).toBe('x-xor; key=42');
      expect(log.negotiations).toEqual([{ name: 'x-xor', offers: ['x-xor; key=999', 'x-xor; key=42', 'x-xor; key=7'], limits: { maxIncomingSize: 64 * 1024 * 1024 } }]);
      await connect(t.port, '/limits', 'x-xor; key=1');
      expect(log.negotiations[1].limits).toEqual({ maxIncomingSize: 4321 });
    });

    it('may decline: no header, nothing created, RSV2 is a protocol error', async () => {
      const { client, agreed } = await connect(t.port, '/echo', 'x-xor; nokey');
      expect(agreed).toBeUndefined();
      expect(log.negotiations).toHaveLength(1);
      expect(log.created).toEqual([]);
      client.send({ opcode: BINARY, rsv: RSV2, payload: 'x' });
      expect((await client.readClose())?.code).toBe(1002);
    });

    it('follows the route: extensions: [] offers nothing, a route list replaces the module’s', async () => {
      expect((await connect(t.port, '/none', 'x-xor; key=5')).agreed).toBeUndefined();
      expect((await connect(t.port, '/slow', 'x-xor; key=5')).agreed).toBeUndefined();
      expect((await connect(t.port, '/slow', 'x-xor; key=5, x-slow')).agreed).toBe('x-slow');
      expect(log.negotiations.map((entry) => entry.name)).toEqual(['x-slow']);
    });
  });

  describe('frames', () => {
    it('passes every frame through a sync extension both ways: data transformed and marked, control frames untouched', async () => {
      const { client } = await connect(t.port, '/echo', 'x-xor; key=90');
      client.send({ opcode: TEXT, rsv: RSV2, payload: xor(Buffer.from('hello'), 90) });
      client.send({ opcode: BINARY, rsv: RSV2, fin: false, payload: xor(Buffer.from([1, 2, 3]), 90) });
      client.send({ opcode: PING, payload: 'are you there' });
      client.send({ opcode: CONTINUATION, rsv: RSV2, payload: xor(Buffer.from([4, 5]), 90) });
      const frames = [(await client.readFrame())!, (await client.readFrame())!, (await client.readFrame())!];
      expect(frames.map((frame) => [frame.opcode, frame.rsv])).toEqual([[TEXT, RSV2], [PONG, 0], [BINARY, RSV2]]);
      expect(xor(frames[0].payload, 90).toString()).toBe('hello');
      expect(frames[1].payload.toString()).toBe('are you there');
      expect([...xor(frames[2].payload, 90)]).toEqual([1, 2, 3, 4, 5]);
      expect(log.incoming).toEqual(['x-xor TEXT', 'x-xor BINARY', 'x-xor PING', 'x-xor BINARY']);
    });

    it('closes with the code of the WebSocketProtocolError an extension throws (a data frame without RSV2: 1002)', async () => {
      const { client } = await connect(t.port, '/echo', 'x-xor; key=3');
      client.send({ opcode: TEXT, payload: 'unmarked' });
      expect((await client.readClose())?.code).toBe(1002);
    });

    it('keeps order through an async extension: 40 messages in one write, each echoed in turn, one frame at a time in the extension', async () => {
      const { client, agreed } = await connect(t.port, '/slow', 'x-slow');
      expect(agreed).toBe('x-slow');
      const sent = Array.from({ length: 40 }, (_, i) => `message ${i} ${'.'.repeat(i)}`);
      const frames: FrameSpec[] = sent.map((text) => ({ opcode: TEXT, rsv: RSV3, payload: shift(Buffer.from(text), 1) }));
      frames.splice(20, 0, { opcode: PING, payload: 'mid' });
      client.write(Buffer.concat(frames.map((frame) => encodeFrame(frame))));
      const echoed: string[] = [];
      let pong = '';
      while (echoed.length < sent.length) {
        const frame = (await client.readFrame())!;
        if (frame.opcode === PONG) pong = frame.payload.toString();
        else {
          expect([frame.opcode, frame.rsv]).toEqual([TEXT, RSV3]);
          echoed.push(shift(frame.payload, -1).toString());
        }
      }
      expect(echoed).toEqual(sent);
      expect(pong).toBe('mid');
      // The session hands the extension one frame at a time, each way.
      expect([log.peakIncoming, log.peakOutgoing]).toEqual([1, 1]);
    });

    it('keeps order going out too: 30 unawaited sends, then the Close 1000, then the end of TCP', async () => {
      const { client } = await connect(t.port, '/burst', 'x-slow');
      client.send({ opcode: TEXT, rsv: RSV3, payload: shift(Buffer.from('go'), 1) });
      const frames: RawFrame[] = [];
      for (let frame = await client.readFrame(); frame !== null; frame = frame.opcode === CLOSE ? null : await client.readFrame()) frames.push(frame);
      expect(frames.at(-1)?.opcode).toBe(CLOSE);
      client.send({ opcode: CLOSE, payload: frames[30].payload });
      expect(await client.waitForEnd()).toBe(true);
      expect(frames.map((frame) => (frame.opcode === CLOSE ? `close ${frame.payload.readUInt16BE(0)}` : shift(frame.payload, -1).toString()))).toEqual([
        ...Array.from({ length: 30 }, (_, i) => `message ${i}`),
        'close 1000',
      ]);
      expect(frames.slice(0, 30).every((frame) => frame.rsv === RSV3)).toBe(true);
      // The Close is a control frame: not the extension's to mark.
      expect(frames[30].rsv).toBe(0);
    });

    it.each([
      ['x-xor; key=9, permessage-deflate', 'xor first, then deflate'],
      ['permessage-deflate, x-xor; key=9', 'deflate first, then xor'],
    ])('runs several extensions in the order of the response: %s (%s going out, the reverse coming in)', async (offer) => {
      sessionExtensions.length = 0;
      const { client, agreed } = await connect(t.port, '/xor-and-deflate', offer);
      expect(agreed).toBe(offer);
      const xorFirst = offer.startsWith('x-xor');
      const message = Buffer.from('compress me, then hide me, or the other way round. '.repeat(20));
      // What the server's pipeline undoes coming in: the last extension's work first.
      const wire = xorFirst ? deflateMessage(xor(message, 9)) : xor(deflateMessage(message), 9);
      client.send({ opcode: BINARY, rsv: RSV1 | RSV2, payload: wire });
      const frame = (await client.readFrame())!;
      expect(frame.rsv).toBe(RSV1 | RSV2);
      const received = xorFirst ? xor(inflateAlone(frame.payload), 9) : inflateAlone(xor(frame.payload, 9));
      expect(received.toString()).toBe(message.toString());
      // session.extensions: the negotiated ones, in the 101's order.
      expect(sessionExtensions).toEqual([offer.split(', ')]);
    });
  });

  describe('failures and dispose', () => {
    it('answers 500 when a factory’s negotiate() throws, and goes on serving', async () => {
      const { client, response } = await RawClient.open(t.port, '/broken-negotiate', { 'Sec-WebSocket-Extensions': 'x-throw' });
      clients.track(client);
      expect(response.status).toBe(500);
      // Not offered, the factory is not asked: the route works.
      expect((await connect(t.port, '/broken-negotiate')).agreed).toBeUndefined();
      const { client: other } = await connect(t.port, '/echo', 'x-xor; key=2');
      other.send({ opcode: TEXT, rsv: RSV2, payload: xor(Buffer.from('still here'), 2) });
      expect(xor((await other.readFrame())!.payload, 2).toString()).toBe('still here');
    });

    it.each([
      ['code', 1003],
      ['async-code', 1007],
      ['other', 1011],
      ['outgoing', 1011],
    ])('x-fail; how=%s closes with %i, and the extension is disposed once', async (how, code) => {
      const { client, agreed } = await connect(t.port, '/fail', `x-fail; how=${how}`);
      expect(agreed).toBe('x-fail');
      client.send({ opcode: TEXT, payload: 'anything' });
      expect((await client.readClose())?.code).toBe(code);
      await expectDisposedOnce(log.created[0]);
    });

    it('disposes once after a normal close handshake', async () => {
      const { client } = await connect(t.port, '/echo', 'x-xor; key=1');
      client.send({ opcode: CLOSE, payload: Buffer.from([0x03, 0xe8]) });
      expect((await client.readClose())?.code).toBe(1000);
      await expectDisposedOnce(log.created[0]);
    });

    it('disposes once when the client drops TCP', async () => {
      const { client } = await connect(t.port, '/slow', 'x-slow');
      client.send({ opcode: TEXT, rsv: RSV3, payload: shift(Buffer.from('one'), 1) });
      expect(data(await client.readFrame())).toBe(shift(Buffer.from('one'), 1).toString());
      client.destroy();
      await expectDisposedOnce(log.created[0]);
    });

    it('disposes once when the handler throws (1011)', async () => {
      const { client } = await connect(t.port, '/throw', 'x-xor; key=1');
      client.send({ opcode: TEXT, rsv: RSV2, payload: xor(Buffer.from('x'), 1) });
      expect((await client.readClose())?.code).toBe(1011);
      // The server waits for our Close before it ends TCP.
      client.send({ opcode: CLOSE, payload: Buffer.from([0x03, 0xf3]) });
      expect(await client.waitForEnd()).toBe(true);
      await expectDisposedOnce(log.created[0]);
    });

    it('disposes once beside permessage-deflate when the client drops TCP', async () => {
      const { client, agreed } = await connect(t.port, '/xor-and-deflate', 'permessage-deflate, x-xor; key=4');
      expect(agreed).toBe('permessage-deflate, x-xor; key=4');
      client.destroy();
      await expectDisposedOnce(log.created[0]);
    });
  });
});

describe('WebSocketUpgrade with extensions', () => {
  let server: Server;
  let port: number;
  const handled: Array<Promise<unknown>> = [];
  /** Server-side sockets, dropped at the end: one left unanswered would keep server.close() waiting. */
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    const echoAny = async (session: WebSocketServerSession) => {
      for await (const frame of session.incoming) await session.send(frame);
    };
    const upgrades: Record<string, WebSocketUpgrade<boolean>> = {
      '/raw': new WebSocketUpgrade({ extensions: [xorFactory] }, echoAny),
      '/raw-negotiating': new WebSocketUpgrade({ extensions: [xorFactory], negotiateExtensions: true }, echoAny),
      '/default': new WebSocketUpgrade({ raw: false, extensions: [xorFactory] }, echoAny),
      '/broken': new WebSocketUpgrade({ raw: false, extensions: [throwingFactory] }, echoAny),
    };
    server = createServer();
    server.on('connection', (socket) => sockets.add(socket));
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      handled.push(upgrades[request.url!].handle(request, socket, head).then(() => 'resolved', (error: unknown) => `rejected: ${String(error)}`));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => clients.dropAll());
  afterAll(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it.each([
    ['/raw', undefined],
    ['/raw-negotiating', 'x-xor; key=8'],
    ['/default', 'x-xor; key=8'],
  ])('%s answers %p to "x-xor; key=8"', async (path, expected) => {
    const { client, agreed } = await connect(port, path, 'x-xor; key=8');
    expect(agreed).toBe(expected);
    client.send(expected === undefined ? { opcode: BINARY, payload: 'ab' } : { opcode: BINARY, rsv: RSV2, payload: xor(Buffer.from('ab'), 8) });
    const frame = (await client.readFrame())!;
    expect(expected === undefined ? frame.payload.toString() : xor(frame.payload, 8).toString()).toBe('ab');
  });

  it('answers 500, as routes do, when a factory’s negotiate() throws, and handle() settles without rejecting', async () => {
    handled.length = 0;
    const opened = RawClient.open(port, '/broken', { 'Sec-WebSocket-Extensions': 'x-throw' });
    opened.catch(() => undefined);
    await within((async () => { while (handled.length === 0) await sleep(5); })(), 2000, 'the upgrade event');
    expect(await within(handled[0], 1000, 'handle() to settle')).toBe('resolved');
    const { client, response } = await within(opened, 1000, 'an answer to the upgrade');
    clients.track(client);
    expect(response.status).toBe(500);
  });
});

describe('the public API', () => {
  it('exports the error an extension throws to close with its own code, as WebSocketExtension.processIncomingFrame documents', () => {
    // "Throw a WebSocketProtocolError to close the session with its code": an extension outside this repository must be able to import it.
    expect(Object.keys(api)).toContain('WebSocketProtocolError');
  });
});

describe('startup', () => {
  /** Claims the given bits and declines every offer. */
  const rival = (name: string, bits: Parameters<typeof factory>[1]) => factory(name, bits, () => undefined);

  @Controller()
  class Plain {
    @WebSocketRoute('echo')
    echo(session: DefaultWebSocketServerSession) {
      return echo(session);
    }
  }

  const routeWith = (options: WebSocketExtensionOptions & { raw?: boolean }) => {
    @Controller()
    class BadRoute {
      @WebSocketRoute('bad', options)
      handle() {
        return undefined;
      }
    }
    return BadRoute;
  };

  it.each<[string, WebSocketExtensionOptions, RegExp]>([
    ['two extensions claiming RSV2', { extensions: [xorFactory, rival('x-rival', { rsv2: true })] }, /"x-rival" claims an RSV bit/],
    ['an extension claiming RSV1 beside deflate', { deflate: true, extensions: [rival('x-rsv1', { rsv1: true, rsv3: true })] }, /"permessage-deflate" claims an RSV bit/],
    ['one name twice', { extensions: [xorFactory, new XorFactory('X-XOR')] }, /"X-XOR" is installed twice/],
    ['extensions that is not an array', { extensions: xorFactory as never }, /"extensions"/],
    ['deflate neither boolean nor object', { deflate: 'yes' as never }, /"deflate"/],
  ])('forRoot with %s fails', async (_, options, message) => {
    await expect(initApp([Plain], [WebSocketsModule.forRoot(options)])).rejects.toThrow(message);
  });

  it('a route whose own list collides fails naming the route, raw routes included (checked even when not negotiated)', async () => {
    const collide = { extensions: [slowFactory, rival('x-rival', { rsv3: true })] };
    await expect(initApp([routeWith(collide)])).rejects.toThrow(/BadRoute\.handle: .*"x-rival" claims an RSV bit/);
    await expect(initApp([routeWith({ ...collide, raw: true })])).rejects.toThrow(/BadRoute\.handle: .*"x-rival" claims an RSV bit/);
    // The module's extensions and the route's deflate meet on the route.
    const onRoute = initApp([routeWith({ deflate: true })], [WebSocketsModule.forRoot({ extensions: [rival('x-rsv1', { rsv1: true })] })]);
    await expect(onRoute).rejects.toThrow(/BadRoute\.handle: .*claims an RSV bit/);
  });

  it('two factories claiming one bit start when they never meet: one on the module, the other replacing it on a route', async () => {
    const a = routeWith({ extensions: [rival('x-a', { rsv2: true })] });
    await expect(initApp([a], [WebSocketsModule.forRoot({ extensions: [rival('x-b', { rsv2: true })], deflate: true })])).resolves.toBeUndefined();
  });

  const INVALID_DEFLATE: Array<[WebSocketExtensionOptions['deflate'], string]> = [
    [{ serverMaxWindowBits: 8 }, 'deflate.serverMaxWindowBits'],
    [{ clientMaxWindowBits: 16 }, 'deflate.clientMaxWindowBits'],
    [{ threshold: -1 }, 'deflate.threshold'],
    [{ compressionLevel: 10 }, 'deflate.compressionLevel'],
    [{ serverNoContextTakeover: 1 as never }, 'deflate.serverNoContextTakeover'],
    [{ compressIf: true as never }, 'deflate.compressIf'],
  ];

  it.each(INVALID_DEFLATE)('forRoot({ deflate: %j }) fails naming %s', async (deflate, name) => {
    await expect(initApp([Plain], [WebSocketsModule.forRoot({ deflate })])).rejects.toThrow(`"${name}"`);
  });

  it.each(INVALID_DEFLATE)('@WebSocketRoute(path, { deflate: %j }) fails naming the route and %s', async (deflate, name) => {
    const init = initApp([routeWith({ deflate })]);
    await expect(init).rejects.toThrow(`"${name}"`);
    await expect(init).rejects.toThrow('BadRoute.handle');
  });

  it.each(INVALID_DEFLATE)('new WebSocketUpgrade({ deflate: %j }) throws naming %s', (deflate, name) => {
    expect(() => new WebSocketUpgrade({ deflate, raw: false }, () => undefined)).toThrow(`"${name}"`);
  });

  it('checks the module’s deflate options even when every route turns deflate off', async () => {
    await expect(initApp([routeWith({ deflate: false })], [WebSocketsModule.forRoot({ deflate: { threshold: 0 } })])).resolves.toBeUndefined();
    await expect(initApp([routeWith({ deflate: false })], [WebSocketsModule.forRoot({ deflate: { threshold: -5 } })])).rejects.toThrow('"deflate.threshold"');
  });
});
