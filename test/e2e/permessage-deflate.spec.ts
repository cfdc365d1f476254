/**
 * permessage-deflate (RFC 7692) end to end, on Express and Fastify: a real
 * `ws` client with `perMessageDeflate` against echo routes with deflate on
 * module-wide and per route (default parameters, no context takeover, small
 * windows; many messages of every size, text and binary, in order); a raw
 * TCP client compressing and inflating with node:zlib itself, independent of
 * the library, to see RSV1 and the bytes on the wire (threshold, compressIf,
 * context takeover, window limits, fragments, the RFC's §7.2.3 examples);
 * protocol errors (RSV1 on a continuation 1002, bad data 1007, RSV1 not
 * negotiated 1002); the handshake's negotiation (offers in order, declined
 * offers, 400 on a malformed header); a 100 MiB zip bomb refused with 1009
 * while memory stays flat and other sessions go on; order and limits with
 * async compression; raw sessions and WebSocketUpgrade.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { runInThisContext } from 'node:vm';
import { constants, createDeflateRaw, createInflateRaw, type InflateRaw } from 'node:zlib';
import { Controller, type LoggerService } from '@nestjs/common';
import type { PerMessageDeflateOptions as WsDeflateOptions } from 'ws';
import {
  ClosedSendChannelError,
  Frame,
  FrameType,
  WebSocketRoute,
  WebSocketUpgrade,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { sleep, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { deflateMessage, deflateNext, hexText, inflateAlone, inflateNext, noise } from '../support/deflate.js';
import { closePayload, encodeFrame, Opcode, RawClient, type RawFrame } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

/** The real process: Jest's sandboxed `process` would report the sandbox, not the server. */
const realProcess = runInThisContext('process') as NodeJS.Process;

const { TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG } = Opcode;
const KiB = 1024;
const MiB = 1024 * 1024;
const RSV1 = 4;
const PMD = 'permessage-deflate';
const hex = (text: string) => Buffer.from(text.replace(/\s/g, ''), 'hex');
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex').slice(0, 16);

/** The parameters of a Sec-WebSocket-Extensions value, sorted: RFC 7692 gives them no order. */
const normalized = (value: string | undefined) =>
  value?.split(',').map((offer) => offer.split(';').map((part) => part.trim()).filter(Boolean)).map(([name, ...params]) => [name, ...params.sort()].join('; ')).join(', ');

async function echo(session: DefaultWebSocketServerSession) {
  for await (const frame of session.incoming) await session.send(frame);
}

/** Every frame a raw session sees, as `{ type, fin, rsv1, hex }`, sent as JSON on the text "report". */
async function inspect(session: WebSocketServerSession) {
  const seen: Array<{ type: string; fin: boolean; rsv1: boolean; hex: string }> = [];
  for await (const frame of session.incoming) {
    if (frame.frameType === FrameType.TEXT && frame.fin && frame.readText() === 'report') {
      await session.send(JSON.stringify(seen));
      seen.length = 0;
    } else if (frame.frameType === FrameType.CLOSE) {
      return;
    } else {
      seen.push({ type: frame.frameType.name, fin: frame.fin, rsv1: frame.rsv1, hex: frame.data.toString('hex') });
    }
  }
}

let sendResults: Array<Promise<string>> = [];
const lateSends: string[] = [];

@Controller()
class DeflateController {
  @WebSocketRoute('echo')
  echo(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('limited', { maxMessageSize: MiB })
  limited(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('binary-only', { deflate: { compressIf: (frame) => frame.frameType === FrameType.BINARY } })
  binaryOnly(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('plain', { deflate: false })
  plain(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('client-window-10', { deflate: { clientMaxWindowBits: 10 } })
  clientWindow10(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('client-window-8', { deflate: { clientMaxWindowBits: 8 } })
  clientWindow8(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('server-asks', { deflate: { serverMaxWindowBits: 11, serverNoContextTakeover: true, clientNoContextTakeover: true } })
  serverAsks(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  /** On "go", sends 40 numbered 20 KiB messages without awaiting them, then returns (close 1000). */
  @WebSocketRoute('burst')
  async burst(session: DefaultWebSocketServerSession) {
    await session.incoming.receive();
    for (let i = 0; i < 40; i++) session.send(Buffer.concat([Buffer.from(`${i}:`), hexText(i, 20 * KiB)])).catch(() => undefined);
  }

  /** On "go", sends 64 KiB messages without awaiting them to a client that does not read, reporting each outcome. */
  @WebSocketRoute('flood', { maxBufferedBytes: 256 * KiB })
  async flood(session: DefaultWebSocketServerSession) {
    await session.incoming.receive();
    sendResults = Array.from({ length: 200 }, (_, i) =>
      session.send(hexText(i, 64 * KiB)).then(
        () => 'sent',
        (error: unknown) => (error instanceof ClosedSendChannelError ? 'refused' : String(error)),
      ),
    );
    await session.closeReason;
  }

  /** Echoes each message only once the client is gone, as a slow handler would; records how the send failed. */
  @WebSocketRoute('late-echo')
  async lateEcho(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) {
      await session.closeReason;
      try {
        await session.send(frame);
        lateSends.push('sent');
      } catch (error) {
        lateSends.push(error instanceof ClosedSendChannelError ? 'ClosedSendChannelError' : `${(error as Error).name}: ${(error as Error).message}`);
        throw error;
      }
    }
  }

  @WebSocketRoute('raw', { raw: true })
  raw(session: WebSocketServerSession) {
    return inspect(session);
  }

  @WebSocketRoute('raw-negotiating', { raw: true, negotiateExtensions: true })
  rawNegotiating(session: WebSocketServerSession) {
    return inspect(session);
  }
}

/** For an app without module-wide deflate: one route turns it on. */
@Controller()
class PerRouteController {
  @WebSocketRoute('echo', { deflate: true })
  echo(session: DefaultWebSocketServerSession) {
    return echo(session);
  }

  @WebSocketRoute('plain')
  plain(session: DefaultWebSocketServerSession) {
    return echo(session);
  }
}

/** Error lines from the app: none is expected (1002/1007/1009 are warnings). */
const loggedErrors: unknown[][] = [];
const quiet = () => undefined;
const keep = (...args: unknown[]) => void loggedErrors.push(args);
const logger: LoggerService = { log: quiet, warn: quiet, debug: quiet, verbose: quiet, error: keep, fatal: keep };
const start = (controllers: Parameters<typeof startApp>[0], options: Parameters<typeof startApp>[1], platform: (typeof PLATFORMS)[number]) =>
  startApp(controllers, options, [], { platform, logger: true, configure: (app) => app.useLogger(logger) });

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

/**
 * The client's half of permessage-deflate on a raw socket, on node:zlib and
 * nothing of the library: one inflater kept across the server's messages (the
 * server keeps its window unless told not to), messages sent compressed on a
 * fresh context each (always valid for a sender).
 */
class Peer {
  private readonly inflater: InflateRaw;

  private constructor(
    readonly client: RawClient,
    readonly extensions: string | undefined,
    windowBits: number,
  ) {
    this.inflater = createInflateRaw({ windowBits });
    this.inflater.on('error', () => undefined);
  }

  static async connect(port: number, path: string, offer: string | null = PMD, windowBits = 15): Promise<Peer> {
    const { client, response } = await RawClient.open(port, path, { 'Sec-WebSocket-Extensions': offer ?? undefined });
    clients.track(client);
    if (response.status !== 101) throw new Error(`Expected 101, got ${response.status}`);
    const peer = new Peer(client, response.headers['sec-websocket-extensions'], windowBits);
    clients.track({ destroy: () => peer.inflater.close() });
    return peer;
  }

  /** Sends `data` compressed, in `fragments` frames: RSV1 on the first only (RFC 7692 §6.1). */
  sendCompressed(opcode: number, data: Buffer, fragments = 1): void {
    this.sendFragments(opcode, deflateMessage(data), fragments, RSV1);
  }

  sendFragments(opcode: number, payload: Buffer, fragments: number, rsv: number): void {
    const size = Math.ceil(payload.length / fragments);
    for (let i = 0; i < fragments; i++) {
      this.client.send({
        opcode: i === 0 ? opcode : CONTINUATION,
        rsv: i === 0 ? rsv : 0,
        fin: i === fragments - 1,
        payload: payload.subarray(i * size, (i + 1) * size),
      });
    }
  }

  /** The next message (or control frame): its first frame's RSV bits, its frames, and its data, inflated when RSV1 says so. */
  async read(timeoutMs = 5000): Promise<{ opcode: number; rsv: number; frames: RawFrame[]; data: Buffer }> {
    const frames: RawFrame[] = [];
    for (;;) {
      const frame = await this.client.readFrame(timeoutMs);
      if (frame === null) throw new Error(`Connection ended after ${frames.length} frames of a message`);
      if (frame.opcode >= CLOSE) return { opcode: frame.opcode, rsv: frame.rsv, frames: [frame], data: frame.payload };
      frames.push(frame);
      if (frame.fin) break;
    }
    const payload = Buffer.concat(frames.map((frame) => frame.payload));
    const data = (frames[0].rsv & RSV1) !== 0 ? await inflateNext(this.inflater, payload) : payload;
    return { opcode: frames[0].opcode, rsv: frames[0].rsv, frames, data };
  }

  /** The close code the server sent, skipping what came before it. */
  async closeCode(): Promise<number | undefined> {
    return (await this.client.readClose())?.code;
  }
}

/** Connects a `ws` client with these deflate options; returns it and the 101's Sec-WebSocket-Extensions. */
async function connectWs(url: string, perMessageDeflate: WsDeflateOptions): Promise<{ ws: WsClient; agreed: string | undefined }> {
  let agreed: string | undefined;
  const ws = await WsClient.connect(url, undefined, {
    perMessageDeflate,
    finishRequest: (request, socket) => {
      socket.once('upgrade', (response: IncomingMessage) => (agreed = response.headers['sec-websocket-extensions'] as string | undefined));
      request.end();
    },
  });
  return { ws: clients.track(ws), agreed };
}

interface Message {
  data: Buffer;
  binary: boolean;
}

/** Sizes around every boundary that matters: the 1 KiB threshold, the 7/16/64-bit lengths, zlib's 16 KiB chunks, many chunks. */
const SIZES = [0, 1, 5, 125, 126, 1023, 1024, 1025, 16 * KiB - 1, 16 * KiB + 1, 65_535, 65_536, 200_000];

/** Text with multi-byte characters, compressible hex text, and random bytes that do not compress, at every size. */
function messages(seed: number): Message[] {
  const out: Message[] = [];
  SIZES.forEach((size, i) => {
    const text = 'héllo wörld ✓ 😀 '.repeat(Math.ceil(size / 10)).slice(0, size);
    out.push({ data: Buffer.from(text), binary: false });
    out.push({ data: hexText(seed + i, size), binary: true });
    out.push({ data: noise(seed + i, size), binary: true });
  });
  return out;
}

/** Sends every message without waiting, then checks each echo: same kind, same bytes, same order. */
async function expectEchoed(ws: WsClient, sent: Message[]): Promise<void> {
  for (const message of sent) ws.ws.send(message.data, { binary: message.binary });
  const received: Message[] = [];
  for (let i = 0; i < sent.length; i++) {
    const { data, isBinary } = await ws.next(10_000);
    received.push({ data, binary: isBinary });
  }
  const summary = (list: Message[]) => list.map((m) => `${m.binary ? 'bin' : 'txt'} ${m.data.length} ${sha(m.data)}`);
  expect(summary(received)).toEqual(summary(sent));
}

/** A bomb: 100 MiB of zeros compressed (about 100 KiB), built in 1 MiB steps so the test itself never holds 100 MiB. */
let bombPayload: Promise<Buffer> | undefined;
function bomb(): Promise<Buffer> {
  bombPayload ??= new Promise((resolve, reject) => {
    const deflater = createDeflateRaw({ level: 9 });
    const chunks: Buffer[] = [];
    deflater.on('data', (chunk: Buffer) => chunks.push(chunk));
    deflater.on('error', reject);
    const zeros = Buffer.alloc(MiB);
    for (let i = 0; i < 100; i++) deflater.write(zeros);
    deflater.flush(constants.Z_SYNC_FLUSH, () => {
      deflater.close();
      resolve(Buffer.concat(chunks).subarray(0, -4));
    });
  });
  return bombPayload;
}

describe.each(PLATFORMS)('on %s', (platform) => {
  describe.each([
    ['module-wide (forRoot deflate: true)', [DeflateController], { deflate: true }],
    ['per route (@WebSocketRoute deflate: true)', [PerRouteController], {}],
  ] as const)('a ws client with perMessageDeflate, deflate on %s', (_, controllers, options) => {
    let t: TestApp;
    beforeAll(async () => (t = await start([...controllers], options, platform)));
    afterAll(() => t.close());

    it('default offer: the 101 answers plain permessage-deflate, and 39 messages of all sizes and kinds echo exactly, in order', async () => {
      // ws offers "permessage-deflate; client_max_window_bits"; §7.1.2.2 lets the server leave the client at 15 by not answering.
      const { ws, agreed } = await connectWs(t.url('/echo'), { threshold: 0 });
      expect(agreed).toBe(PMD);
      await expectEchoed(ws, messages(1));
    });

    it('server_no_context_takeover and client_no_context_takeover: both answered (§7.1.1), and the echo holds', async () => {
      const { ws, agreed } = await connectWs(t.url('/echo'), { threshold: 0, serverNoContextTakeover: true, clientNoContextTakeover: true });
      expect(normalized(agreed)).toBe(normalized(`${PMD}; server_no_context_takeover; client_no_context_takeover`));
      // The same message again and again: with no context takeover each is compressed from scratch on both sides.
      const same = { data: hexText(3, 5000), binary: false };
      await expectEchoed(ws, [same, same, same, ...messages(2).slice(0, 12), same]);
    });

    it('server_max_window_bits=10 and client_max_window_bits=9: both answered with those values (§7.1.2), and the echo holds', async () => {
      const { ws, agreed } = await connectWs(t.url('/echo'), { threshold: 0, serverMaxWindowBits: 10, clientMaxWindowBits: 9 });
      expect(normalized(agreed)).toBe(normalized(`${PMD}; server_max_window_bits=10; client_max_window_bits=9`));
      // Repeats at distances beyond 512 and 1024 bytes, which only a wrong window would get wrong.
      const block = hexText(4, 3000);
      const repeats = { data: Buffer.concat([block, block, block]), binary: true };
      await expectEchoed(ws, [repeats, ...messages(3), repeats]);
    });

    it('a compressed message the ws client sends in four fragments comes back whole', async () => {
      const { ws } = await connectWs(t.url('/echo'), { threshold: 0 });
      const parts = [hexText(5, 3000), hexText(6, 1), Buffer.alloc(0), hexText(7, 70_000)];
      parts.forEach((part, i) => ws.ws.send(part, { fin: i === parts.length - 1, binary: true, compress: true }));
      const { data, isBinary } = await ws.next();
      expect(isBinary).toBe(true);
      expect(sha(data)).toBe(sha(Buffer.concat(parts)));
    });

    it('a route without deflate negotiates nothing with the same client, and still echoes', async () => {
      const { ws, agreed } = await connectWs(t.url('/plain'), { threshold: 0 });
      expect(agreed).toBeUndefined();
      await expectEchoed(ws, messages(4).slice(0, 9));
    });
  });

  describe('on the wire, with a raw client inflating and deflating on its own', () => {
    let t: TestApp;
    beforeAll(async () => (t = await start([DeflateController], { deflate: true }, platform)));
    afterAll(() => t.close());
    afterEach(() => expect(loggedErrors.splice(0)).toEqual([]));

    it.each([
      ['/client-window-10', `${PMD}; client_max_window_bits=10`],
      // zlib cannot deflate with 8 bits and uses 9, whose matches still reach back no more than 250 bytes.
      ['/client-window-8', `${PMD}; client_max_window_bits=8`],
      ['/server-asks', `${PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11`],
    ])('a ws client takes what %s asks for (%s), and the echo holds', async (path, expected) => {
      const { ws, agreed } = await connectWs(t.url(path), { threshold: 0 });
      expect(normalized(agreed)).toBe(normalized(expected));
      const block = hexText(20, 1500);
      const repeats = { data: Buffer.concat([block, block, block]), binary: true };
      await expectEchoed(ws, [repeats, ...messages(6).slice(0, 24), repeats]);
    });

    it('compresses a large compressible message: RSV1 on the server’s frame, fewer bytes, and it inflates to the message', async () => {
      const peer = await Peer.connect(t.port, '/echo');
      expect(peer.extensions).toBe(PMD);
      const message = Buffer.from('The quick brown fox jumps over the lazy dog. '.repeat(250));
      peer.client.send({ opcode: TEXT, payload: message });
      const frame = (await peer.client.readFrame())!;
      expect([frame.opcode, frame.fin, frame.rsv]).toEqual([TEXT, true, RSV1]);
      expect(frame.payload.length).toBeLessThan(message.length / 10);
      expect(inflateAlone(frame.payload)).toEqual(message);
    });

    it('sends a message under the 1024-byte threshold uncompressed, and one at it compressed', async () => {
      const peer = await Peer.connect(t.port, '/echo');
      peer.client.send({ opcode: BINARY, payload: Buffer.alloc(1023, 7) });
      const under = (await peer.client.readFrame())!;
      expect([under.rsv, under.payload]).toEqual([0, Buffer.alloc(1023, 7)]);
      peer.client.send({ opcode: BINARY, payload: Buffer.alloc(1024, 7) });
      const at = await peer.read();
      expect([at.rsv, at.frames[0].payload.length < 100, at.data]).toEqual([RSV1, true, Buffer.alloc(1024, 7)]);
    });

    it('sends uncompressed what compressIf refuses (text here), and compresses what it accepts (binary)', async () => {
      const peer = await Peer.connect(t.port, '/binary-only');
      const message = hexText(8, 5000);
      peer.client.send({ opcode: TEXT, payload: message });
      expect(await peer.read()).toMatchObject({ opcode: TEXT, rsv: 0, data: message });
      peer.client.send({ opcode: BINARY, payload: message });
      expect(await peer.read()).toMatchObject({ opcode: BINARY, rsv: RSV1, data: message });
    });

    it('keeps its LZ77 window across messages by default, and starts fresh each time with server_no_context_takeover', async () => {
      const message = hexText(9, 8000);
      const kept = await Peer.connect(t.port, '/echo');
      kept.client.send({ opcode: BINARY, payload: message });
      kept.client.send({ opcode: BINARY, payload: message });
      const [first, second] = [await kept.read(), await kept.read()];
      expect([first.data, second.data]).toEqual([message, message]);
      // The second points back into the first: a few bytes.
      expect(second.frames[0].payload.length).toBeLessThan(first.frames[0].payload.length / 20);

      const fresh = await Peer.connect(t.port, '/echo', `${PMD}; server_no_context_takeover`);
      expect(fresh.extensions).toBe(`${PMD}; server_no_context_takeover`);
      fresh.client.send({ opcode: BINARY, payload: message });
      fresh.client.send({ opcode: BINARY, payload: message });
      const [a, b] = [(await fresh.client.readFrame())!, (await fresh.client.readFrame())!];
      expect(b.payload).toEqual(a.payload);
      expect(inflateAlone(b.payload)).toEqual(message);
    });

    it('compresses within the 512-byte window a client asked for with server_max_window_bits=9', async () => {
      // The client's inflater has a 9-bit window: a reference further back would fail it ("too far back").
      const peer = await Peer.connect(t.port, '/echo', `${PMD}; server_max_window_bits=9`, 9);
      expect(peer.extensions).toBe(`${PMD}; server_max_window_bits=9`);
      const block = hexText(10, 4096);
      for (let i = 0; i < 3; i++) peer.client.send({ opcode: BINARY, payload: block });
      for (let i = 0; i < 3; i++) expect((await peer.read()).data).toEqual(block);
    });

    it('takes the RFC 7692 §7.2.3 example payloads: one frame, two fragments, a shared window, stored and two-block messages', async () => {
      const peer = await Peer.connect(t.port, '/echo');
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f248cdc9c90700') });
      peer.client.send({ opcode: TEXT, rsv: RSV1, fin: false, payload: hex('f248cd') });
      peer.client.send({ opcode: CONTINUATION, payload: hex('c9c90700') });
      // §7.2.3.2: the second "Hello" only points into the window the first one left.
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f248cdc9c90700') });
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f200110000') });
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('000500faff48656c6c6f00') });
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f248050000 00ffff cac9c90700') });
      const echoed = [];
      for (let i = 0; i < 6; i++) echoed.push((await peer.read()).data.toString());
      expect(echoed).toEqual(Array(6).fill('Hello'));
    });

    it('takes a message ending in a BFINAL block (RFC 7692 §7.2.3.4), and the messages after it', async () => {
      const peer = await Peer.connect(t.port, '/echo');
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f348cdc9c9070000') });
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f248cdc9c90700') });
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: deflateMessage(Buffer.from('and a third')) });
      const echoed = [await peer.read(), await peer.read(), await peer.read()].map((m) => m.data.toString());
      expect(echoed).toEqual(['Hello', 'Hello', 'and a third']);
    });

    it('reassembles a compressed message in three fragments (RSV1 on the first only), answering a ping between them', async () => {
      const peer = await Peer.connect(t.port, '/echo');
      const message = Buffer.from('fragmented and compressed ✓ '.repeat(400));
      const payload = deflateMessage(message);
      const third = Math.ceil(payload.length / 3);
      peer.client.send({ opcode: TEXT, rsv: RSV1, fin: false, payload: payload.subarray(0, third) });
      peer.client.send({ opcode: PING, payload: 'between' });
      peer.client.send({ opcode: CONTINUATION, fin: false, payload: payload.subarray(third, 2 * third) });
      peer.client.send({ opcode: CONTINUATION, payload: payload.subarray(2 * third) });
      const pong = await peer.read();
      // Control frames are never compressed (RFC 7692 §6.1).
      expect([pong.opcode, pong.rsv, pong.data.toString()]).toEqual([PONG, 0, 'between']);
      const echoed = await peer.read();
      expect([echoed.opcode, echoed.data.toString()]).toEqual([TEXT, message.toString()]);
    });

    it('mixes compressed and uncompressed client messages, and one deflate context kept across messages', async () => {
      const peer = await Peer.connect(t.port, '/echo');
      const deflater = createDeflateRaw();
      const viaContext = (data: Buffer) => deflateNext(deflater, data);
      const block = hexText(11, 3000);
      const sent = [block, Buffer.from('plain'), block, Buffer.concat([block, block])];
      for (const [i, data] of sent.entries()) {
        if (i === 1) peer.client.send({ opcode: BINARY, payload: data });
        else peer.client.send({ opcode: BINARY, rsv: RSV1, payload: await viaContext(data) });
      }
      deflater.close();
      for (const data of sent) expect(sha((await peer.read()).data)).toBe(sha(data));
    });

    it.each([
      ['RSV1 on a continuation frame', 1002, (peer: Peer) => {
        const payload = deflateMessage(hexText(12, 2000));
        peer.client.send({ opcode: TEXT, rsv: RSV1, fin: false, payload: payload.subarray(0, 10) });
        peer.client.send({ opcode: CONTINUATION, rsv: RSV1, payload: payload.subarray(10) });
      }],
      ['RSV1 on a continuation of an uncompressed message', 1002, (peer: Peer) => {
        peer.client.send({ opcode: TEXT, fin: false, payload: 'He' });
        peer.client.send({ opcode: CONTINUATION, rsv: RSV1, payload: hex('c9c90700') });
      }],
      ['RSV1 on a ping', 1002, (peer: Peer) => peer.client.send({ opcode: PING, rsv: RSV1, payload: hex('f248cdc9c90700') })],
      ['RSV2, which permessage-deflate does not use', 1002, (peer: Peer) => peer.client.send({ opcode: TEXT, rsv: 2, payload: 'x' })],
      ['garbage with RSV1 (block type 3 is reserved)', 1007, (peer: Peer) => peer.client.send({ opcode: BINARY, rsv: RSV1, payload: Buffer.from([0xff, 0xff, 0xff, 0xff]) })],
      ['compressed text that inflates to invalid UTF-8', 1007, (peer: Peer) => peer.sendCompressed(TEXT, Buffer.from([0x61, 0xc0, 0x80, 0x62]))],
    ])('closes with the right code on %s (%i)', async (_, code, send) => {
      const peer = await Peer.connect(t.port, '/echo');
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f248cdc9c90700') });
      expect((await peer.read()).data.toString()).toBe('Hello');
      send(peer);
      expect(await peer.closeCode()).toBe(code);
      expect(await peer.client.waitForEnd()).toBe(true);
    });

    it.each([
      ['no offer at all', '/echo', null],
      ['a route with deflate: false', '/plain', PMD],
      ['an offer the server declines', '/echo', `${PMD}; server_max_window_bits=8`],
    ])('negotiates nothing with %s: no header in the 101, and RSV1 is a protocol error (1002)', async (_, path, offer) => {
      const peer = await Peer.connect(t.port, path, offer);
      expect(peer.extensions).toBeUndefined();
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f248cdc9c90700') });
      expect(await peer.closeCode()).toBe(1002);
    });

    it('takes a message that inflates to exactly maxMessageSize (1 MiB), and closes 1009 on one byte more', async () => {
      const peer = await Peer.connect(t.port, '/limited');
      peer.sendCompressed(BINARY, Buffer.alloc(MiB, 1));
      const echoed = await peer.read();
      expect([echoed.rsv, echoed.data.length, echoed.data.equals(Buffer.alloc(MiB, 1))]).toEqual([RSV1, MiB, true]);
      peer.sendCompressed(BINARY, Buffer.alloc(MiB + 1, 1));
      expect(await peer.closeCode()).toBe(1009);
    });

    it('counts a fragmented compressed message as a whole: 1009 once its fragments inflate past maxMessageSize', async () => {
      const peer = await Peer.connect(t.port, '/limited');
      peer.sendCompressed(BINARY, Buffer.alloc(3 * MiB), 6);
      expect(await peer.closeCode()).toBe(1009);
    });

    it('keeps order through async compression: 40 unawaited sends, then the Close 1000 after them, then the end of TCP', async () => {
      const peer = await Peer.connect(t.port, '/burst');
      peer.client.send({ opcode: TEXT, payload: 'go' });
      for (let i = 0; i < 40; i++) {
        const message = await peer.read();
        expect([message.opcode, message.rsv]).toEqual([BINARY, RSV1]);
        expect(message.data.subarray(0, `${i}:`.length).toString()).toBe(`${i}:`);
        expect(sha(message.data)).toBe(sha(Buffer.concat([Buffer.from(`${i}:`), hexText(i, 20 * KiB)])));
      }
      const close = await peer.read();
      expect([close.opcode, close.data.readUInt16BE(0)]).toEqual([CLOSE, 1000]);
      peer.client.send({ opcode: CLOSE, payload: closePayload(1000) });
      expect(await peer.client.waitForEnd()).toBe(true);
    });

    it('answers a compressed message and the client’s Close sent right behind it in order: the echo, then the Close', async () => {
      const peer = await Peer.connect(t.port, '/echo');
      const message = hexText(13, 50_000);
      // One write: the Close is parsed while the message is still being inflated.
      peer.client.write(
        Buffer.concat([encodeFrame({ opcode: BINARY, rsv: RSV1, payload: deflateMessage(message) }), encodeFrame({ opcode: CLOSE, payload: closePayload(1000) })]),
      );
      expect(sha((await peer.read()).data)).toBe(sha(message));
      expect(await peer.closeCode()).toBe(1000);
      expect(await peer.client.waitForEnd()).toBe(true);
    });

    it.each([
      ['under the threshold (sent as it is)', 100],
      ['over the threshold (to be compressed)', 5000],
    ])('fails a send after the client left with ClosedSendChannelError, a normal end, whatever its size: %s', async (_, size) => {
      lateSends.length = 0;
      const peer = await Peer.connect(t.port, '/late-echo');
      peer.client.send({ opcode: BINARY, payload: hexText(22, size) });
      await sleep(20);
      peer.client.destroy();
      await within(
        (async () => {
          while (lateSends.length === 0) await sleep(5);
        })(),
        3000,
        'the late send',
      );
      await sleep(20);
      const errors = loggedErrors.splice(0);
      expect(lateSends).toEqual(['ClosedSendChannelError']);
      // README: a send failing because the connection ended is not logged as an error.
      expect(errors).toEqual([]);
    });

    it('counts messages waiting for compression against maxBufferedBytes: 1008, and the sends past it refused', async () => {
      sendResults = [];
      const peer = await Peer.connect(t.port, '/flood');
      peer.client.socket.pause();
      peer.client.send({ opcode: TEXT, payload: 'go' });
      await within(
        (async () => {
          while (sendResults.length === 0) await sleep(5);
        })(),
        5000,
        'the flood to start',
      );
      const results = await within(Promise.all(sendResults), 10_000, 'every send to settle');
      expect(results.filter((result) => result !== 'sent' && result !== 'refused')).toEqual([]);
      // 256 KiB is four of these messages: a few go, the rest are refused rather than queued (the socket's buffers alone would take dozens).
      expect(results.filter((result) => result === 'sent').length).toBeLessThanOrEqual(8);
      expect(results.slice(-100).every((result) => result === 'refused')).toBe(true);
      peer.client.socket.resume();
      expect(await peer.closeCode()).toBe(1008);
    });
  });

  describe('negotiation in the handshake (raw TCP)', () => {
    let t: TestApp;
    beforeAll(async () => (t = await start([DeflateController], { deflate: true }, platform)));
    afterAll(() => t.close());

    const handshake = async (path: string, headers: Record<string, string>) => {
      const { client, response } = await RawClient.open(t.port, path, headers);
      clients.track(client);
      return response;
    };

    it.each<[string, string, string | undefined]>([
      ['/echo', `${PMD}; server_max_window_bits=10, ${PMD}`, `${PMD}; server_max_window_bits=10`],
      ['/echo', `${PMD}; foo, ${PMD}; server_no_context_takeover`, `${PMD}; server_no_context_takeover`],
      ['/echo', `${PMD}; server_no_context_takeover; server_no_context_takeover, ${PMD}; client_max_window_bits=12`, `${PMD}; client_max_window_bits=12`],
      ['/echo', `${PMD}; server_max_window_bits, ${PMD}`, PMD],
      ['/echo', `${PMD}; server_max_window_bits=16, ${PMD}; server_max_window_bits=08, ${PMD}; server_max_window_bits=9`, `${PMD}; server_max_window_bits=9`],
      ['/echo', `${PMD}; server_max_window_bits="11"`, `${PMD}; server_max_window_bits=11`],
      ['/echo', `x-unknown; a=1, ${PMD}`, PMD],
      ['/echo', `${PMD}; server_max_window_bits=8`, undefined],
      ['/echo', `${PMD}; server_max_window_bits`, undefined],
      ['/echo', `${PMD}; server_max_window_bits=08`, undefined],
      ['/echo', `${PMD}; server_max_window_bits=16`, undefined],
      ['/echo', `${PMD}; foo; bar=1`, undefined],
      ['/echo', 'x-unknown', undefined],
      ['/client-window-10', PMD, undefined],
      ['/client-window-10', `${PMD}; client_max_window_bits`, `${PMD}; client_max_window_bits=10`],
      ['/client-window-10', `${PMD}; client_max_window_bits=12`, `${PMD}; client_max_window_bits=10`],
      ['/client-window-10', `${PMD}; client_max_window_bits=9`, `${PMD}; client_max_window_bits=9`],
      ['/client-window-10', `${PMD}, ${PMD}; client_max_window_bits`, `${PMD}; client_max_window_bits=10`],
      ['/server-asks', PMD, `${PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11`],
      ['/server-asks', `${PMD}; server_max_window_bits=10`, `${PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10`],
    ])('%s with "%s" → 101 with %p', async (path, offer, expected) => {
      const response = await handshake(path, { 'Sec-WebSocket-Extensions': offer });
      expect(response.status).toBe(101);
      expect(normalized(response.headers['sec-websocket-extensions'])).toBe(normalized(expected));
    });

    it('reads offers split over two header lines as one list, in order', async () => {
      // Different letter cases make RawClient write two lines; Node joins them with ", ".
      const response = await handshake('/echo', {
        'Sec-WebSocket-Extensions': `${PMD}; nope`,
        'sec-websocket-extensions': `${PMD}; server_max_window_bits=12`,
      });
      expect([response.status, response.headers['sec-websocket-extensions']]).toEqual([101, `${PMD}; server_max_window_bits=12`]);
    });

    it.each([`${PMD};`, `${PMD}; =10`, `${PMD}; server_max_window_bits=1 0`, `"${PMD}"`, `${PMD}; a="unterminated`, `${PMD}, x y`])(
      'answers 400 to the malformed header %p',
      async (offer) => {
        const response = await handshake('/echo', { 'Sec-WebSocket-Extensions': offer });
        expect(response.status).toBe(400);
      },
    );
  });

  describe('a 100 MiB zip bomb', () => {
    let t: TestApp;
    beforeAll(async () => {
      await bomb();
      t = await start([DeflateController], { deflate: true }, platform);
    });
    afterAll(() => t.close());

    it('is refused with 1009 under maxMessageSize 1 MiB, 8 at once, with memory flat and other sessions served throughout', async () => {
      const payload = await bomb();
      expect(payload.length).toBeLessThan(128 * KiB);
      const { ws: bystander } = await connectWs(t.url('/echo'), { threshold: 0 });
      const hit = async () => {
        const peer = await Peer.connect(t.port, '/limited');
        peer.client.send({ opcode: BINARY, rsv: RSV1, payload });
        return peer.closeCode();
      };
      // Warm-up: the first sessions allocate what later ones reuse.
      expect(await hit()).toBe(1009);
      await sleep(50);
      const before = realProcess.memoryUsage();
      let peak = { rss: before.rss, arrayBuffers: before.arrayBuffers };
      const sampler = setInterval(() => {
        const now = realProcess.memoryUsage();
        peak = { rss: Math.max(peak.rss, now.rss), arrayBuffers: Math.max(peak.arrayBuffers, now.arrayBuffers) };
      }, 2);
      let codes: Array<number | undefined>;
      try {
        const bombs = Promise.all(Array.from({ length: 8 }, hit));
        // The bystander is answered while the bombs go off.
        await expectEchoed(bystander, [{ data: hexText(14, 5000), binary: false }]);
        codes = await within(bombs, 10_000, 'the bombs to be refused');
      } finally {
        clearInterval(sampler);
      }
      expect(codes).toEqual(Array(8).fill(1009));
      const growth = { rss: (peak.rss - before.rss) / MiB, arrayBuffers: (peak.arrayBuffers - before.arrayBuffers) / MiB };
      // Inflated in full, the bombs would take 800 MiB; each may hold about its 1 MiB limit.
      expect(growth.arrayBuffers).toBeLessThan(48);
      expect(growth.rss).toBeLessThan(64);
      await expectEchoed(bystander, [{ data: hexText(15, 5000), binary: true }]);
      const { ws: newcomer } = await connectWs(t.url('/echo'), { threshold: 0 });
      await expectEchoed(newcomer, messages(5).slice(0, 12));
      expect(loggedErrors.splice(0)).toEqual([]);
    });
  });

  describe('raw sessions', () => {
    let t: TestApp;
    beforeAll(async () => (t = await start([DeflateController], { deflate: true }, platform)));
    afterAll(() => t.close());

    const report = async (peer: Peer) => {
      peer.client.send({ opcode: TEXT, payload: 'report' });
      return JSON.parse((await peer.read()).data.toString()) as Array<{ type: string; fin: boolean; rsv1: boolean; hex: string }>;
    };

    it('negotiate nothing by default, module-wide deflate or not: no header in the 101, RSV1 is 1002', async () => {
      const peer = await Peer.connect(t.port, '/raw');
      expect(peer.extensions).toBeUndefined();
      peer.client.send({ opcode: BINARY, payload: 'plain' });
      expect(await report(peer)).toEqual([{ type: 'BINARY', fin: true, rsv1: false, hex: Buffer.from('plain').toString('hex') }]);
      peer.client.send({ opcode: TEXT, rsv: RSV1, payload: hex('f248cdc9c90700') });
      expect(await peer.closeCode()).toBe(1002);
    });

    it('with negotiateExtensions: true, agree and hand the handler each frame inflated, RSV1 cleared, fragments kept apart', async () => {
      const peer = await Peer.connect(t.port, '/raw-negotiating');
      expect(peer.extensions).toBe(PMD);
      peer.client.send({ opcode: TEXT, rsv: RSV1, fin: false, payload: hex('f248cd') });
      peer.client.send({ opcode: CONTINUATION, payload: hex('c9c90700') });
      peer.client.send({ opcode: BINARY, payload: 'as it is' });
      peer.sendCompressed(BINARY, hexText(16, 3000));
      const seen = await report(peer);
      expect(seen.map(({ type, fin, rsv1 }) => [type, fin, rsv1])).toEqual([
        ['TEXT', false, false],
        ['TEXT', true, false],
        ['BINARY', true, false],
        ['BINARY', true, false],
      ]);
      expect(Buffer.from(seen[0].hex + seen[1].hex, 'hex').toString()).toBe('Hello');
      expect(Buffer.from(seen[2].hex, 'hex').toString()).toBe('as it is');
      expect(Buffer.from(seen[3].hex, 'hex')).toEqual(hexText(16, 3000));
    });
  });
});

describe('WebSocketUpgrade with deflate', () => {
  let server: Server;
  let port: number;

  beforeAll(async () => {
    const handler = async (session: WebSocketServerSession | DefaultWebSocketServerSession) => {
      for await (const frame of session.incoming) if (frame.frameType !== FrameType.CLOSE) await session.send(new Frame.Binary(true, frame.data));
    };
    const upgrades: Record<string, WebSocketUpgrade<boolean>> = {
      '/raw': new WebSocketUpgrade({ deflate: true }, handler),
      '/raw-negotiating': new WebSocketUpgrade({ deflate: true, negotiateExtensions: true }, handler),
      '/default': new WebSocketUpgrade({ raw: false, deflate: { serverNoContextTakeover: true } }, handler),
    };
    server = createServer();
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => void upgrades[request.url!]?.handle(request, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each([
    ['/raw', undefined],
    ['/raw-negotiating', PMD],
    ['/default', `${PMD}; server_no_context_takeover`],
  ])('%s answers %p, and what it agreed to works both ways', async (path, expected) => {
    const peer = await Peer.connect(port, path);
    expect(peer.extensions).toBe(expected);
    const message = hexText(17, 4000);
    if (expected === undefined) {
      peer.client.send({ opcode: BINARY, payload: message });
      expect(await peer.read()).toMatchObject({ rsv: 0, data: message });
    } else {
      peer.sendCompressed(BINARY, message);
      expect(await peer.read()).toMatchObject({ rsv: RSV1, data: message });
    }
  });
});

