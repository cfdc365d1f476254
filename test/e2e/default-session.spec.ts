/**
 * Default sessions (Ktor's `webSocket`) end to end: a real Nest app on
 * loopback, the `ws` package as a well-behaved client and RawClient for the
 * frames no real client would send.
 */
import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import { Controller } from '@nestjs/common';
import {
  CloseReason,
  WebSocketDeserializeError,
  WebSocketRoute,
  type DefaultWebSocketServerSession,
} from 'nest-websocket-routes';
import { closePayload, RawClient, Opcode } from '../support/raw-client.js';
import { within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { WsClient } from '../support/ws-client.js';

const { TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG } = Opcode;

/** Close reasons that handlers saw in `session.closeReason`, by the `id` query parameter. */
const seenCloseReasons = new Map<string, { promise: Promise<CloseReason | null>; resolve(reason: CloseReason | null): void }>();
function closeReasonSeen(id: string) {
  let entry = seenCloseReasons.get(id);
  if (entry === undefined) {
    let resolve!: (reason: CloseReason | null) => void;
    const promise = new Promise<CloseReason | null>((r) => (resolve = r));
    entry = { promise, resolve };
    seenCloseReasons.set(id, entry);
  }
  return entry;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

@Controller()
class DefaultSessionController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('close-later')
  async closeLater(session: DefaultWebSocketServerSession) {
    await session.close(new CloseReason(1013, 'later'));
    closeReasonSeen('close-later').resolve(await session.closeReason);
  }

  @WebSocketRoute('return')
  returnAtOnce() {
    return undefined;
  }

  @WebSocketRoute('throw')
  async throwAtOnce(session: DefaultWebSocketServerSession) {
    await session.incoming.receive();
    throw new Error('handler failed on purpose');
  }

  @WebSocketRoute('record')
  async record(session: DefaultWebSocketServerSession) {
    const id = session.call.query.id as string;
    closeReasonSeen(id).resolve(await session.closeReason);
  }

  @WebSocketRoute('rooms/:room')
  async room(session: DefaultWebSocketServerSession) {
    await session.send(JSON.stringify({ path: session.call.path, params: session.call.params, query: session.call.query }));
  }

  @WebSocketRoute('json')
  async json(session: DefaultWebSocketServerSession) {
    for (;;) {
      try {
        const value = await session.receiveDeserialized<{ n: number; tags: string[] }>();
        await session.sendSerialized({ doubled: value.n * 2, tags: value.tags, echo: value });
      } catch (error) {
        if (!(error instanceof WebSocketDeserializeError)) throw error;
        await session.sendSerialized({ error: error.name });
      }
    }
  }

  @WebSocketRoute('settings', { pingInterval: 60_000, timeout: 7_000 })
  async settings(session: DefaultWebSocketServerSession) {
    await session.sendSerialized({ pingIntervalMillis: session.pingIntervalMillis, timeoutMillis: session.timeoutMillis });
    for await (const frame of session.incoming) await session.send(frame);
  }
}

@Controller()
class LimitsController {
  @WebSocketRoute('limit')
  async limit(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('limit-1025', { maxFrameSize: 1025 })
  async limit1025(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

@Controller()
class PingController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

const clients = new ClientTracker();
const track = <T extends RawClient | WsClient>(client: T): T => clients.track(client);
afterEach(() => clients.dropAll());

describe.each(PLATFORMS)('on %s', (platform) => {
  describe('default session', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([DefaultSessionController], {}, [], { platform })));
    afterAll(() => t.close());

    const connectWs = async (path: string) => track(await WsClient.connect(t.url(path)));
    const connectRaw = async (path: string) => track(await RawClient.connect(t.port, path));

    describe('messages', () => {
      it('echoes a text and a binary message', async () => {
        const client = await connectWs('/echo');
        client.ws.send('hello');
        expect(await client.next()).toEqual({ data: Buffer.from('hello'), isBinary: false });
        client.ws.send(Buffer.from([0, 1, 2, 255]));
        expect(await client.next()).toEqual({ data: Buffer.from([0, 1, 2, 255]), isBinary: true });
      });

      it('answers a conversation in order', async () => {
        const client = await connectWs('/echo');
        const sent = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight'];
        for (const message of sent) client.ws.send(message);
        const replies: string[] = [];
        for (let i = 0; i < sent.length; i++) replies.push(await client.nextText());
        expect(replies).toEqual(sent);
      });

      it('echoes frames of every short length 1..125 exactly', async () => {
        const client = await connectRaw('/echo');
        const payloads = Array.from({ length: 125 }, (_, i) => randomBytes(i + 1));
        for (const payload of payloads) client.send({ opcode: BINARY, payload });
        for (const payload of payloads) {
          const frame = await client.readFrame();
          expect(frame).toMatchObject({ fin: true, rsv: 0, opcode: BINARY });
          expect(frame!.payload.equals(payload)).toBe(true);
        }
      });

      it('echoes 100 000 small messages in order', async () => {
        const client = await connectWs('/echo');
        const count = 100_000;
        let received = 0;
        let outOfOrder = -1;
        const all = new Promise<void>((resolve) =>
          client.ws.on('message', (data: Buffer) => {
            if (outOfOrder < 0 && data.toString() !== String(received)) outOfOrder = received;
            if (++received === count) resolve();
          }),
        );
        for (let i = 0; i < count; i++) client.ws.send(String(i));
        await within(all, 20_000, `100 000 echoes (got ${received})`);
        expect(received).toBe(count);
        expect(outOfOrder).toBe(-1);
      });

      it('echoes a 20 MiB binary message byte for byte', async () => {
        const client = await connectWs('/echo');
        const payload = randomBytes(20 * 1024 * 1024);
        client.ws.send(payload);
        const reply = await client.next(15_000);
        expect(reply.isBinary).toBe(true);
        expect(reply.data.length).toBe(payload.length);
        expect(sha256(reply.data)).toBe(sha256(payload));
      });

      it('joins fragments into one message and answers a ping between them', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: TEXT, payload: 'ABC', fin: false });
        client.send({ opcode: PING, payload: 'between' });
        client.send({ opcode: CONTINUATION, payload: '12', fin: false });
        client.send({ opcode: CONTINUATION, payload: '3', fin: true });
        const pong = await client.readFrame();
        expect(pong).toMatchObject({ opcode: PONG, fin: true });
        expect(pong!.payload.toString()).toBe('between');
        const message = await client.readFrame();
        expect(message).toMatchObject({ opcode: TEXT, fin: true });
        expect(message!.payload.toString()).toBe('ABC123');
      });

      it('joins a UTF-8 character split across fragments', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: TEXT, payload: Buffer.from([0x61, 0xc3]), fin: false });
        client.send({ opcode: CONTINUATION, payload: Buffer.from([0xa9, 0x62]), fin: true });
        const message = await client.readFrame();
        expect(message).toMatchObject({ opcode: TEXT, fin: true });
        expect(message!.payload.toString('utf8')).toBe('aéb');
      });
    });

    describe('ping and pong', () => {
      it('answers a ping with a pong carrying the same payload', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: PING, payload: 'are you there' });
        const frame = await client.readFrame();
        expect(frame).toMatchObject({ opcode: PONG, fin: true });
        expect(frame!.payload.toString()).toBe('are you there');
      });

      it('answers 5 pings with 5 pongs in order', async () => {
        const client = await connectRaw('/echo');
        const payloads = ['p0', 'p1', 'p2', 'p3', 'p4'];
        for (const payload of payloads) client.send({ opcode: PING, payload });
        const pongs: string[] = [];
        for (let i = 0; i < payloads.length; i++) {
          const frame = await client.readFrame();
          expect(frame!.opcode).toBe(PONG);
          pongs.push(frame!.payload.toString());
        }
        expect(pongs).toEqual(payloads);
      });

      it('answers a ping from the ws client', async () => {
        const client = await connectWs('/echo');
        const pong = new Promise<Buffer>((resolve) => client.ws.once('pong', resolve));
        client.ws.ping(Buffer.from('ws-ping'));
        expect((await within(pong, 5000, 'pong')).toString()).toBe('ws-ping');
      });

      it('does not show ping or pong frames in incoming', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: PING, payload: 'x' });
        client.send({ opcode: PONG, payload: 'unsolicited' });
        client.send({ opcode: TEXT, payload: 'after' });
        const frames = [await client.readFrame(), await client.readFrame()];
        expect(frames.map((frame) => [frame!.opcode, frame!.payload.toString()])).toEqual([
          [PONG, 'x'],
          [TEXT, 'after'],
        ]);
      });
    });

    describe('closing', () => {
      it('echoes the close code of the ws client', async () => {
        const client = await connectWs('/echo');
        client.ws.close(4000, 'bye');
        expect(await client.waitClosed()).toEqual({ code: 4000, reason: 'bye' });
      });

      it('echoes a client Close with its code, then ends TCP', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: CLOSE, payload: closePayload(3001, 'done') });
        const close = await client.readClose();
        expect(close).toEqual({ code: 3001, reason: 'done' });
        expect(await client.waitForEnd()).toBe(true);
      });

      it('answers a Close without payload with 1000', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: CLOSE });
        const frame = await client.readFrame();
        expect(frame!.opcode).toBe(CLOSE);
        expect(frame!.payload.length).toBeGreaterThanOrEqual(2);
        expect(frame!.payload.readUInt16BE(0)).toBe(1000);
        expect(await client.waitForEnd()).toBe(true);
      });

      it('sends nothing but the Close echo after the peer closed', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: CLOSE, payload: closePayload(1000) });
        client.send({ opcode: TEXT, payload: 'too late' });
        client.send({ opcode: PING, payload: 'too late' });
        const frames = await client.readAll();
        expect(frames.map((frame) => frame.opcode)).toEqual([CLOSE]);
      });

      it('gives the handler the client close reason in closeReason', async () => {
        const client = await connectRaw('/record?id=client-close');
        client.send({ opcode: CLOSE, payload: closePayload(4001, 'see you') });
        const reason = await within(closeReasonSeen('client-close').promise, 5000, 'closeReason');
        expect(reason).toMatchObject({ code: 4001, message: 'see you' });
        expect(await client.readClose()).toEqual({ code: 4001, reason: 'see you' });
      });

      it('closes with the reason given to session.close', async () => {
        const client = await connectWs('/close-later');
        expect(await client.waitClosed()).toEqual({ code: 1013, reason: 'later' });
        const reason = await within(closeReasonSeen('close-later').promise, 5000, 'closeReason');
        expect(reason).toMatchObject({ code: 1013, message: 'later' });
      });

      it('closes with 1000 when the handler returns, and ends TCP once the client answered', async () => {
        const ws = await connectWs('/return');
        expect((await ws.waitClosed()).code).toBe(1000);

        const client = await connectRaw('/return');
        expect((await client.readClose())?.code).toBe(1000);
        client.send({ opcode: CLOSE, payload: closePayload(1000) });
        expect(await client.waitForEnd()).toBe(true);
      });

      it('closes with 1011 when the handler throws, leaving other sessions alone', async () => {
        const bystander = await connectWs('/echo');
        bystander.ws.send('before');
        expect(await bystander.nextText()).toBe('before');

        const failing = await connectWs('/throw');
        failing.ws.send('trigger');
        expect((await failing.waitClosed()).code).toBe(1011);

        bystander.ws.send('after');
        expect(await bystander.nextText()).toBe('after');
      });

      it('resolves closeReason with 1006 when the client drops TCP', async () => {
        const client = await connectRaw('/record?id=tcp-drop');
        client.destroy();
        const reason = await within(closeReasonSeen('tcp-drop').promise, 5000, 'closeReason after a TCP drop');
        expect(reason?.code).toBe(1006);
      });
    });

    describe('protocol violations', () => {
      const expectFailure = async (client: RawClient, code: number) => {
        expect((await client.readClose())?.code).toBe(code);
        expect(await client.waitForEnd()).toBe(true);
      };

      it('closes 1002 on a reserved opcode', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: 3, payload: 'x' });
        await expectFailure(client, 1002);
      });

      it('closes 1002 on an unmasked frame', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: TEXT, payload: 'plain', mask: false });
        await expectFailure(client, 1002);
      });

      it('closes 1002 on RSV bits without an extension', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: TEXT, payload: 'x', rsv: 4 });
        await expectFailure(client, 1002);
      });

      it('closes 1002 on a continuation with no message to continue', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: CONTINUATION, payload: 'x' });
        await expectFailure(client, 1002);
      });

      it('closes 1002 on a fragmented control frame', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: PING, payload: 'x', fin: false });
        await expectFailure(client, 1002);
      });

      it('closes 1007 on invalid UTF-8 in a text frame', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: TEXT, payload: Buffer.from([0x61, 0xff, 0x62]) });
        await expectFailure(client, 1007);
      });

      it('closes 1007 on invalid UTF-8 split across fragments', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: TEXT, payload: Buffer.from([0x61, 0xc3]), fin: false });
        client.send({ opcode: CONTINUATION, payload: Buffer.from([0x28]), fin: true });
        await expectFailure(client, 1007);
      });

      it('closes 1007 on a text message that ends inside a UTF-8 sequence', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: TEXT, payload: 'a', fin: false });
        client.send({ opcode: CONTINUATION, payload: Buffer.from([0xe2, 0x82]), fin: true });
        await expectFailure(client, 1007);
      });

      it.each([1005, 999, 1006, 2000])('closes 1002 on the invalid close code %i', async (code) => {
        const client = await connectRaw('/echo');
        client.send({ opcode: CLOSE, payload: closePayload(code) });
        await expectFailure(client, 1002);
      });

      it('closes 1002 on a one-byte Close payload', async () => {
        const client = await connectRaw('/echo');
        client.send({ opcode: CLOSE, payload: Buffer.from([0x03]) });
        await expectFailure(client, 1002);
      });
    });

    describe('the upgrade call', () => {
      it('exposes path params and the query', async () => {
        const client = await connectWs('/rooms/lobby?x=1&x=2&y=z');
        expect(JSON.parse(await client.nextText())).toEqual({
          path: '/rooms/lobby',
          params: { room: 'lobby' },
          query: { x: ['1', '2'], y: 'z' },
        });
      });

      it('decodes percent-encoded path params', async () => {
        const client = await connectWs('/rooms/big%20room');
        expect(JSON.parse(await client.nextText()).params).toEqual({ room: 'big room' });
      });
    });

    describe('serialization and settings', () => {
      it('round-trips JSON with receiveDeserialized and sendSerialized', async () => {
        const client = await connectWs('/json');
        client.ws.send(JSON.stringify({ n: 21, tags: ['a', 'b'] }));
        const reply = await client.next();
        expect(reply.isBinary).toBe(false);
        expect(JSON.parse(reply.data.toString())).toEqual({ doubled: 42, tags: ['a', 'b'], echo: { n: 21, tags: ['a', 'b'] } });

        client.ws.send('{not json');
        expect(JSON.parse(await client.nextText())).toEqual({ error: 'WebSocketDeserializeError' });
      });

      it('reads pingIntervalMillis and timeoutMillis from the route options', async () => {
        const client = await connectWs('/settings');
        expect(JSON.parse(await client.nextText())).toEqual({ pingIntervalMillis: 60_000, timeoutMillis: 7_000 });
      });
    });
  });

  describe('default session limits (maxFrameSize 1023 module-wide, 1025 on one route)', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([LimitsController], { maxFrameSize: 1023 }, [], { platform })));
    afterAll(() => t.close());

    it('accepts a frame of maxFrameSize bytes and closes 1009 on one byte more', async () => {
      const client = track(await RawClient.connect(t.port, '/limit'));
      const fits = randomBytes(1023);
      client.send({ opcode: BINARY, payload: fits });
      const echo = await client.readFrame();
      expect(echo!.payload.equals(fits)).toBe(true);

      client.send({ opcode: BINARY, payload: randomBytes(1024) });
      expect((await client.readClose())?.code).toBe(1009);
      expect(await client.waitForEnd()).toBe(true);
    });

    it('closes 1009 when fragments add up past maxFrameSize', async () => {
      const client = track(await RawClient.connect(t.port, '/limit-1025'));
      const fits = randomBytes(1025);
      client.send({ opcode: BINARY, payload: fits });
      expect((await client.readFrame())!.payload.equals(fits)).toBe(true);

      client.send({ opcode: BINARY, payload: randomBytes(1024), fin: false });
      client.send({ opcode: CONTINUATION, payload: randomBytes(1024), fin: false });
      client.send({ opcode: CONTINUATION, payload: randomBytes(1024), fin: false });
      client.send({ opcode: CONTINUATION, payload: randomBytes(1024), fin: true });
      const frames = await client.readAll();
      expect(frames.map((frame) => frame.opcode)).toEqual([CLOSE]);
      expect(frames[0].payload.readUInt16BE(0)).toBe(1009);
    });
  });

  describe('default session pinger (pingInterval 200, timeout 300, closeTimeout 500)', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([PingController], { pingInterval: 200, timeout: 300, closeTimeout: 500 }, [], { platform })));
    afterAll(() => t.close());

    it('pings a silent client, closes 1011 when no pong comes, and drops TCP after the close timeout', async () => {
      const client = track(await RawClient.connect(t.port, '/echo'));
      const ping = await client.readFrame();
      expect(ping).toMatchObject({ opcode: PING, fin: true });
      const close = await client.readFrame();
      expect(close!.opcode).toBe(CLOSE);
      expect(close!.payload.readUInt16BE(0)).toBe(1011);
      // The client never answers the Close either: the server's close timeout ends TCP.
      expect(await client.waitForEnd(5000)).toBe(true);
    });

    it('closes 1011 when the pong carries another payload', async () => {
      const client = track(await RawClient.connect(t.port, '/echo'));
      const ping = await client.readFrame();
      expect(ping!.opcode).toBe(PING);
      client.send({ opcode: PONG, payload: Buffer.concat([ping!.payload, Buffer.from('!')]) });
      expect((await client.readClose())?.code).toBe(1011);
    });

    it('keeps a RawClient that answers each ping open', async () => {
      const client = track(await RawClient.connect(t.port, '/echo'));
      for (let i = 0; i < 4; i++) {
        const ping = await client.readFrame();
        expect(ping!.opcode).toBe(PING);
        client.send({ opcode: PONG, payload: ping!.payload });
      }
      client.send({ opcode: TEXT, payload: 'still here' });
      let frame = await client.readFrame();
      while (frame!.opcode === PING) {
        client.send({ opcode: PONG, payload: frame!.payload });
        frame = await client.readFrame();
      }
      expect(frame).toMatchObject({ opcode: TEXT });
      expect(frame!.payload.toString()).toBe('still here');
    });

    it('keeps a ws client (which answers pings) open past several intervals', async () => {
      const client = track(await WsClient.connect(t.url('/echo')));
      let pings = 0;
      const fourPings = new Promise<void>((resolve) =>
        client.ws.on('ping', () => {
          if (++pings === 4) resolve();
        }),
      );
      await within(fourPings, 5000, 'four pings');
      client.ws.send('still open');
      expect(await client.nextText()).toBe('still open');
      expect(client.ws.readyState).toBe(client.ws.OPEN);
    });
  });
});
