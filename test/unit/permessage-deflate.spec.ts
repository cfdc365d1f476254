/**
 * permessage-deflate (RFC 7692) without a server: the factory's negotiation
 * as a table of offers and configs against the responses RFC 7692 §7.1
 * requires or allows, the options check, and the extension's data path
 * checked against node:zlib used directly in the test (the RFC's own §7.2.3
 * examples incoming; outgoing output inflated by an independent inflater,
 * window limits and context takeover included; the client's window kept
 * when a large message moves the session to larger output chunks, which
 * large messages leave as views and small ones as copies), the inflated-size cap (1009),
 * bad data (1007), RSV1 on a continuation (1002), dispose, and the shared
 * zlib limiter.
 */
import { jest } from '@jest/globals';
import { createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import { Frame } from '../../lib/protocol/frame.js';
import { WebSocketProtocolError } from '../../lib/protocol/protocol-error.js';
import {
  negotiateExtensions,
  parseExtensionOffers,
  type WebSocketExtension,
  type WebSocketExtensionFactory,
  WebSocketExtensionHeader,
} from '../../lib/protocol/websocket-extension.js';
import {
  permessageDeflate,
  resolveDeflateConfig,
  type PerMessageDeflateOptions,
} from '../../lib/extensions/permessage-deflate.factory.js';
import { zlibLimiter } from '../../lib/extensions/zlib-limiter.js';
import { deflateMessage, deflateNext, hexText, inflateAlone, inflateNext, noise, TAIL } from '../support/deflate.js';

const LIMITS = { maxIncomingSize: 64 * 1024 * 1024 };
const hex = (text: string) => Buffer.from(text.replace(/0x|\s/g, ''), 'hex');

/** The response as a name and a sorted parameter list: RFC 7692 gives parameters no order. */
function normalized(header: WebSocketExtensionHeader | string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const [offer] = parseExtensionOffers(String(header));
  return [offer.name, ...[...offer.parameters].map((p) => p.replace(/\s+/g, '')).sort()].join('; ');
}

function negotiate(offers: string, options: PerMessageDeflateOptions = {}, limits = LIMITS): WebSocketExtension | undefined {
  return permessageDeflate(options).negotiate(parseExtensionOffers(offers), limits);
}

/** A client's inflater for the server's messages, keeping its window across them (RFC 7692 §7.2.2). */
function clientInflater(windowBits = 15) {
  const stream = createInflateRaw({ windowBits });
  inflaters.push(stream);
  return { message: (payload: Buffer) => inflateNext(stream, payload) };
}
const inflaters: InflateRaw[] = [];
/** Clients' deflaters for incoming messages that point back into earlier ones. */
const deflaters: DeflateRaw[] = [];

/** Whatever the call threw or its promise rejected with. */
async function failure(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  return undefined;
}

async function expectClose(run: () => unknown, code: number): Promise<void> {
  const error = await failure(run);
  expect(error).toBeInstanceOf(WebSocketProtocolError);
  expect((error as WebSocketProtocolError).closeCode).toBe(code);
}

/** An incoming text frame; RSV1 marks a compressed message's first frame. */
const compressed = (payload: Buffer, fin = true, rsv1 = true) => new Frame.Text(fin, payload, rsv1);

const extensions: WebSocketExtension[] = [];
/** An extension for the data-path tests, disposed after each test. */
function open(offers = 'permessage-deflate', options: PerMessageDeflateOptions = {}, limits = LIMITS): WebSocketExtension {
  const extension = negotiate(offers, options, limits);
  if (extension === undefined) throw new Error(`declined: ${offers}`);
  extensions.push(extension);
  return extension;
}
afterEach(() => {
  for (const extension of extensions.splice(0)) extension.dispose();
  for (const inflater of inflaters.splice(0)) inflater.close();
  for (const deflater of deflaters.splice(0)) deflater.close();
});

describe('negotiation (RFC 7692 §5, §7.1)', () => {
  const P = 'permessage-deflate';
  // [offers, server options, the response, or undefined for a declined offer]
  const TABLE: Array<[string, PerMessageDeflateOptions, string | undefined, string]> = [
    [P, {}, P, 'nothing asked, nothing to answer: both windows 15, contexts kept'],
    [`${P}; client_max_window_bits`, {}, P, '§7.1.2.2: the server may leave the client at 15 by not answering'],
    [`${P}; client_max_window_bits=10`, {}, `${P}; client_max_window_bits=10`, '§7.1.2.2: an answer may not exceed the hint'],
    [`${P}; server_max_window_bits=10`, {}, `${P}; server_max_window_bits=10`, '§7.1.2.1: accepting means answering with the same or a smaller value'],
    [`${P}; server_max_window_bits=15`, {}, `${P}; server_max_window_bits=15`, '§7.1.2.1'],
    [`${P}; server_max_window_bits=9`, {}, `${P}; server_max_window_bits=9`, '§7.1.2.1: 9 is zlib’s smallest raw window'],
    [`${P}; server_max_window_bits="10"`, {}, `${P}; server_max_window_bits=10`, 'RFC 6455 §9.1: a quoted value is the token it quotes'],
    [`${P}; server_no_context_takeover`, {}, `${P}; server_no_context_takeover`, '§7.1.1.1: accepting means answering with it'],
    [`${P}; client_no_context_takeover`, {}, `${P}; client_no_context_takeover`, '§7.1.1.2: the server may answer with it'],
    [
      `${P}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9`,
      {},
      `${P}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=9`,
      'every parameter at once',
    ],
    // Declined offers (§5: unknown, repeated or invalid parameters, or a configuration the server cannot support).
    [`${P}; server_max_window_bits=8`, {}, undefined, 'the answer would have to be 8, which zlib cannot compress with'],
    [`${P}; server_max_window_bits`, {}, undefined, '§7.1.2.1: the value is required'],
    [`${P}; server_max_window_bits=16`, {}, undefined, '§7.1.2.1: 8 to 15'],
    [`${P}; server_max_window_bits=7`, {}, undefined, '§7.1.2.1: 8 to 15'],
    [`${P}; server_max_window_bits=08`, {}, undefined, '§7.1.2.1: no leading zeroes'],
    [`${P}; server_max_window_bits="08"`, {}, undefined, 'no leading zeroes inside quotes either'],
    [`${P}; server_max_window_bits=0x0a`, {}, undefined, 'decimal only'],
    [`${P}; client_max_window_bits=16`, {}, undefined, '§7.1.2.2: 8 to 15'],
    [`${P}; client_max_window_bits=08`, {}, undefined, '§7.1.2.2: no leading zeroes'],
    [`${P}; server_no_context_takeover=1`, {}, undefined, '§7.1.1.1: the parameter has no value'],
    [`${P}; client_no_context_takeover="x"`, {}, undefined, '§7.1.1.2: the parameter has no value'],
    [`${P}; x_max_window_bits=10`, {}, undefined, '§5: an unknown parameter'],
    [`${P}; server_no_context_takeover; server_no_context_takeover`, {}, undefined, '§5: a repeated parameter'],
    [`${P}; client_max_window_bits; client_max_window_bits=10`, {}, undefined, '§5: a repeated parameter, once with a value'],
    // Several offers: the first acceptable one wins (§5).
    [`${P}; foo, ${P}; server_max_window_bits=12`, {}, `${P}; server_max_window_bits=12`, 'the second, the first being invalid'],
    [`${P}; server_max_window_bits=12, ${P}`, {}, `${P}; server_max_window_bits=12`, 'the first, both being acceptable'],
    [`${P}; server_max_window_bits=8, ${P}; client_no_context_takeover`, {}, `${P}; client_no_context_takeover`, 'past one the server cannot honour'],
    [`${P}; foo, ${P}; server_max_window_bits=8`, {}, undefined, 'none acceptable'],
    // What the server asks for itself.
    [P, { serverMaxWindowBits: 11 }, `${P}; server_max_window_bits=11`, '§7.1.2.1: the server may announce its window unasked'],
    [`${P}; server_max_window_bits=13`, { serverMaxWindowBits: 11 }, `${P}; server_max_window_bits=11`, 'smaller than offered'],
    [`${P}; server_max_window_bits=9`, { serverMaxWindowBits: 11 }, `${P}; server_max_window_bits=9`, 'never larger than offered'],
    [P, { serverNoContextTakeover: true, clientNoContextTakeover: true }, `${P}; server_no_context_takeover; client_no_context_takeover`, '§7.1.1'],
    [P, { clientMaxWindowBits: 10 }, undefined, '§7.1.2.2: without client_max_window_bits in the offer the answer may not limit the client'],
    [`${P}; client_max_window_bits`, { clientMaxWindowBits: 10 }, `${P}; client_max_window_bits=10`, '§7.1.2.2'],
    [`${P}; client_max_window_bits=12`, { clientMaxWindowBits: 10 }, `${P}; client_max_window_bits=10`, 'the smaller of hint and limit'],
    [`${P}; client_max_window_bits=9`, { clientMaxWindowBits: 10 }, `${P}; client_max_window_bits=9`, 'the smaller of hint and limit'],
    [`${P}; client_max_window_bits`, { clientMaxWindowBits: 8 }, `${P}; client_max_window_bits=8`, '8 is a valid client window'],
    [`${P}, ${P}; client_max_window_bits`, { clientMaxWindowBits: 10 }, `${P}; client_max_window_bits=10`, 'the first offer cannot be limited, the second can'],
  ];

  it.each(TABLE)('%s with %j → %s (%s)', (offers, options, expected) => {
    const extension = negotiate(offers, options);
    expect(normalized(extension?.response)).toBe(normalized(expected));
    extension?.dispose();
  });

  it('answers every accepted offer within RFC 7692’s rules', () => {
    for (const [offers, options] of TABLE) {
      const extension = negotiate(offers, options);
      if (extension === undefined) continue;
      const answer = extension.response.parseParameters()!;
      const accepted = parseExtensionOffers(offers).find((offer) => negotiate(offer.toString(), options) !== undefined)!;
      const offered = accepted.parseParameters()!;
      expect(extension.response.name).toBe('permessage-deflate');
      for (const [name, value] of answer) {
        if (name.endsWith('_no_context_takeover')) expect(value).toBe(true);
        else expect(String(value)).toMatch(/^(?:8|9|1[0-5])$/);
      }
      // §7.1.2.1: an offered server window is answered, never with more.
      const server = offered.get('server_max_window_bits');
      if (server !== undefined) expect(Number(answer.get('server_max_window_bits'))).toBeLessThanOrEqual(Number(server));
      // §7.1.2.2: no client window unless offered; never more than a hint.
      const client = offered.get('client_max_window_bits');
      if (client === undefined) expect(answer.has('client_max_window_bits')).toBe(false);
      else if (client !== true && answer.has('client_max_window_bits')) expect(Number(answer.get('client_max_window_bits'))).toBeLessThanOrEqual(Number(client));
      // §7.1.1.1: an offered server_no_context_takeover is accepted only by answering it.
      if (offered.has('server_no_context_takeover')) expect(answer.get('server_no_context_takeover')).toBe(true);
      extension.dispose();
    }
  });

  it('passes each factory only the offers of its own name, in the client’s order, and orders the result by offer', () => {
    const seen: string[][] = [];
    const toy = (name: string, rsv2: boolean): WebSocketExtensionFactory => ({
      name,
      rsv1: false,
      rsv2,
      rsv3: !rsv2,
      config: undefined,
      negotiate(offers) {
        seen.push(offers.map(String));
        return {
          factory: this,
          response: new WebSocketExtensionHeader(name),
          processIncomingFrame: (frame) => frame,
          processOutgoingFrame: (frame) => frame,
          dispose: () => undefined,
        };
      },
    });
    const offers = parseExtensionOffers('x-b, permessage-deflate; foo, X-A; k=1, permessage-deflate, x-a; k=2');
    const accepted = negotiateExtensions([toy('x-a', true), permessageDeflate(), toy('x-b', false)], offers, LIMITS);
    // Extension names compare case-insensitively; x-b came first in the offers, so it comes first.
    expect(seen).toEqual([['X-A; k=1', 'x-a; k=2'], ['x-b']]);
    expect(accepted.map((extension) => extension.response.name)).toEqual(['x-b', 'permessage-deflate', 'x-a']);
    for (const extension of accepted) extension.dispose();
    expect(negotiateExtensions([permessageDeflate()], parseExtensionOffers('x-other'), LIMITS)).toEqual([]);
  });
});

describe('options', () => {
  it.each<[PerMessageDeflateOptions, string]>([
    [{ compressionLevel: 10 }, 'compressionLevel'],
    [{ compressionLevel: -2 }, 'compressionLevel'],
    [{ compressionLevel: 1.5 }, 'compressionLevel'],
    [{ serverMaxWindowBits: 8 }, 'serverMaxWindowBits'],
    [{ serverMaxWindowBits: 16 }, 'serverMaxWindowBits'],
    [{ clientMaxWindowBits: 7 }, 'clientMaxWindowBits'],
    [{ clientMaxWindowBits: 16 }, 'clientMaxWindowBits'],
    [{ threshold: -1 }, 'threshold'],
    [{ threshold: 0.5 }, 'threshold'],
    [{ serverNoContextTakeover: 'yes' as never }, 'serverNoContextTakeover'],
    [{ clientNoContextTakeover: 1 as never }, 'clientNoContextTakeover'],
    [{ compressIf: 'always' as never }, 'compressIf'],
  ])('%j is refused, naming deflate.%s', (options, name) => {
    expect(() => permessageDeflate(options)).toThrow(`"deflate.${name}"`);
  });

  it('takes the bounds, and fills in the documented defaults', () => {
    expect(() => permessageDeflate({ compressionLevel: -1, serverMaxWindowBits: 9, clientMaxWindowBits: 8, threshold: 0 })).not.toThrow();
    expect(() => permessageDeflate({ compressionLevel: 9, serverMaxWindowBits: 15, clientMaxWindowBits: 15 })).not.toThrow();
    expect(resolveDeflateConfig({})).toEqual({
      compressionLevel: -1,
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
      threshold: 1024,
      compressIf: undefined,
    });
  });
});

describe('outgoing messages', () => {
  it('compresses a message at the threshold: RSV1, the tail dropped (§7.2.1), and it inflates back', async () => {
    const extension = open();
    for (const size of [1024, 20_000]) {
      const message = hexText(size, size);
      const out = await extension.processOutgoingFrame(new Frame.Text(true, message));
      expect([out.frameType.name, out.fin, out.rsv1, out.rsv2, out.rsv3]).toEqual(['TEXT', true, true, false, false]);
      expect(out.data.length).toBeLessThan(message.length);
      expect(out.data.subarray(-4)).not.toEqual(TAIL);
      if (size === 1024) expect(inflateAlone(out.data)).toEqual(message);
    }
  });

  it('sends a message under the threshold, or one compressIf refuses, as it is', async () => {
    const asked: number[] = [];
    const extension = open('permessage-deflate', {
      compressIf: (frame) => {
        asked.push(frame.data.length);
        return frame.frameType.name === 'BINARY';
      },
    });
    const small = new Frame.Binary(true, hexText(1, 1023));
    expect(await extension.processOutgoingFrame(small)).toBe(small);
    const text = new Frame.Text(true, hexText(2, 5000));
    expect(await extension.processOutgoingFrame(text)).toBe(text);
    const binary = await extension.processOutgoingFrame(new Frame.Binary(true, hexText(3, 5000)));
    expect(binary.rsv1).toBe(true);
    // compressIf is only asked about messages at or over the threshold.
    expect(asked).toEqual([5000, 5000]);
  });

  it('keeps the LZ77 window across messages unless server_no_context_takeover was agreed', async () => {
    const message = hexText(4, 8000);
    const kept = open();
    const first = (await kept.processOutgoingFrame(new Frame.Binary(true, message))).data;
    const second = (await kept.processOutgoingFrame(new Frame.Binary(true, message))).data;
    // The second refers back to the first: a few bytes, which only an inflater that saw the first can read.
    expect(second.length).toBeLessThan(first.length / 20);
    const client = clientInflater();
    expect(await client.message(first)).toEqual(message);
    expect(await client.message(second)).toEqual(message);

    const fresh = open('permessage-deflate; server_no_context_takeover');
    const a = (await fresh.processOutgoingFrame(new Frame.Binary(true, message))).data;
    const b = (await fresh.processOutgoingFrame(new Frame.Binary(true, message))).data;
    expect(b).toEqual(a);
    expect(inflateAlone(a)).toEqual(message);
    expect(inflateAlone(b)).toEqual(message);
  });

  it.each([
    ['server_max_window_bits=9 offered', 'permessage-deflate; server_max_window_bits=9', {}],
    ['serverMaxWindowBits: 9 configured', 'permessage-deflate', { serverMaxWindowBits: 9 }],
  ])('compresses within a 512-byte window when %s: a 9-bit inflater reads every message', async (_, offers, options) => {
    const extension = open(offers, options);
    expect(extension.response.parseParameters()!.get('server_max_window_bits')).toBe('9');
    const client = clientInflater(9);
    const block = hexText(5, 4096);
    for (let i = 0; i < 3; i++) {
      const out = await extension.processOutgoingFrame(new Frame.Binary(true, block));
      expect(await client.message(out.data)).toEqual(block);
    }
  });

  it('(control) with the default 15-bit window the same messages need more than a 9-bit inflater', async () => {
    const extension = open();
    const client = clientInflater(9);
    const block = hexText(5, 4096);
    const first = await extension.processOutgoingFrame(new Frame.Binary(true, block));
    const second = await extension.processOutgoingFrame(new Frame.Binary(true, block));
    await client.message(first.data).catch(() => undefined);
    await expect(client.message(second.data)).rejects.toThrow(/too far back/);
  });

  it('compresses a fragmented message as one: RSV1 on its first frame only, decided by that frame', async () => {
    const extension = open();
    const parts = [hexText(6, 2000), hexText(7, 10), Buffer.alloc(0), hexText(8, 3000)];
    const out: Frame[] = [];
    for (const [i, part] of parts.entries()) out.push(await extension.processOutgoingFrame(new Frame.Text(i === parts.length - 1, part)));
    expect(out.map((frame) => [frame.fin, frame.rsv1])).toEqual([[false, true], [false, false], [false, false], [true, false]]);
    expect(inflateAlone(Buffer.concat(out.map((frame) => frame.data)))).toEqual(Buffer.concat(parts));

    // A first frame under the threshold leaves the whole message uncompressed, large continuations included.
    const plain = [hexText(9, 10), hexText(10, 5000)];
    const sent = [
      await extension.processOutgoingFrame(new Frame.Binary(false, plain[0])),
      await extension.processOutgoingFrame(new Frame.Binary(true, plain[1])),
    ];
    expect(sent.map((frame) => [frame.rsv1, frame.data])).toEqual([[false, plain[0]], [false, plain[1]]]);
  });

  it('lets control frames through untouched, even in the middle of a compressed message', async () => {
    const extension = open();
    const head = await extension.processOutgoingFrame(new Frame.Text(false, hexText(11, 2000)));
    const ping = new Frame.Ping(hexText(12, 125));
    expect(await extension.processOutgoingFrame(ping)).toBe(ping);
    const close = new Frame.Close(Buffer.from([0x03, 0xe8]));
    expect(await extension.processIncomingFrame(close)).toBe(close);
    const tail = await extension.processOutgoingFrame(new Frame.Text(true, hexText(13, 100)));
    expect(tail.rsv1).toBe(false);
    expect(inflateAlone(Buffer.concat([head.data, tail.data]))).toEqual(Buffer.concat([hexText(11, 2000), hexText(13, 100)]));
  });

  it('compresses an empty message when the threshold is 0, over and over, in a form a peer inflates to nothing', async () => {
    const extension = open('permessage-deflate', { threshold: 0 });
    const client = clientInflater();
    const messages = ['', '', 'Hello', '', 'Hello', ''].map((text) => Buffer.from(text));
    for (const message of messages) {
      const out = await extension.processOutgoingFrame(new Frame.Text(true, message));
      expect(out.rsv1).toBe(true);
      expect(await client.message(out.data)).toEqual(message);
    }
  });
});

describe('incoming messages', () => {
  const inflated = async (extension: WebSocketExtension, frames: Frame[]) => {
    const out: Frame[] = [];
    for (const frame of frames) out.push(await extension.processIncomingFrame(frame));
    return out;
  };

  // RFC 7692 §7.2.3: the RFC's own payloads, each "Hello" (message boundaries as the RFC gives them).
  it.each<[string, Buffer[][]]>([
    ['§7.2.3.1 a message in one frame', [[hex('f2 48 cd c9 c9 07 00')]]],
    ['§7.2.3.1 a message in two fragments', [[hex('f2 48 cd'), hex('c9 c9 07 00')]]],
    ['§7.2.3.2 two messages sharing the LZ77 window', [[hex('f2 48 cd c9 c9 07 00')], [hex('f2 00 11 00 00')]]],
    ['§7.2.3.3 a block with no compression', [[hex('00 05 00 fa ff 48 65 6c 6c 6f 00')]]],
    ['§7.2.3.4 a block with BFINAL set', [[hex('f3 48 cd c9 c9 07 00 00')]]],
    ['§7.2.3.5 two blocks in one message', [[hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00')]]],
    ['§7.2.3.4 then §7.2.3.1: a message after one that ended with BFINAL', [[hex('f3 48 cd c9 c9 07 00 00')], [hex('f2 48 cd c9 c9 07 00')]]],
  ])('%s', async (_, messages) => {
    const extension = open();
    for (const fragments of messages) {
      const frames = fragments.map((payload, i) => compressed(payload, i === fragments.length - 1, i === 0));
      const out = await inflated(extension, frames);
      expect(out.map((frame) => [frame.frameType.name, frame.fin, frame.rsv1])).toEqual(frames.map((frame) => ['TEXT', frame.fin, false]));
      expect(Buffer.concat(out.map((frame) => frame.data)).toString()).toBe('Hello');
    }
  });

  it('passes uncompressed messages (RSV1 clear) through as they are, between compressed ones', async () => {
    const extension = open();
    const plain = new Frame.Binary(true, Buffer.from([1, 2, 3]));
    expect(await extension.processIncomingFrame(plain)).toBe(plain);
    expect((await extension.processIncomingFrame(compressed(hex('f2 48 cd c9 c9 07 00')))).readText()).toBe('Hello');
    const plainText = new Frame.Text(true, Buffer.from('f2 48'));
    expect(await extension.processIncomingFrame(plainText)).toBe(plainText);
    // The window still holds the first "Hello": §7.2.3.2's second message refers to it.
    expect((await extension.processIncomingFrame(compressed(hex('f2 00 11 00 00')))).readText()).toBe('Hello');
  });

  it('starts each client message with an empty window once client_no_context_takeover is agreed', async () => {
    const extension = open('permessage-deflate; client_no_context_takeover');
    expect((await extension.processIncomingFrame(compressed(hex('f2 48 cd c9 c9 07 00')))).readText()).toBe('Hello');
    // §7.2.3.2's second message points into the previous one: with the window reset there is nothing to point to.
    await expectClose(() => extension.processIncomingFrame(compressed(hex('f2 00 11 00 00'))), 1007);
  });

  // A message that inflates to 32 KiB and a whole window or more moves the session to another inflater (larger output chunks)
  // at that message's end; what follows may point back anywhere in the window, so the move must lose none of it.
  it.each([
    ['the default 15-bit window', 'permessage-deflate', {}, 15],
    ['a 10-bit window the server asks for', 'permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 }, 10],
  ] as const)('keeps the client’s whole window across a message of a window or more, with %s', async (_, offer, options, windowBits) => {
    const extension = open(offer, options);
    const client = createDeflateRaw({ windowBits });
    deflaters.push(client);
    const window = 1 << windowBits;
    // 32 KiB or more, and more than a window: what moves a session.
    const large = hexText(21, Math.max(32 * 1024, window) + 5000);
    // The large message's end from as far back as zlib's compressor reaches (its window less a 262-byte lookahead).
    const farTail = large.subarray(large.length - (window - 300));
    const sent = [large, farTail, hexText(22, 300), farTail.subarray(0, 200)];
    for (const message of sent) {
      const payload = await deflateNext(client, message);
      if (message === farTail) expect(payload.length).toBeLessThan(message.length / 20); // the client did point back
      expect((await extension.processIncomingFrame(compressed(payload))).data).toEqual(message);
    }
  });

  it('moves a session with a small window to large output buffers only from a 32 KiB message on', async () => {
    const extension = open('permessage-deflate; client_max_window_bits', { clientMaxWindowBits: 10 });
    const client = createDeflateRaw({ windowBits: 10 });
    deflaters.push(client);
    const inflate = async (message: Buffer) => (await extension.processIncomingFrame(compressed(await deflateNext(client, message)))).data;
    // A message of more than the 1 KiB window but far under 32 KiB leaves the session on zlib's 16 KiB chunks...
    await inflate(hexText(41, 1_100));
    const first = await inflate(hexText(42, 40_000));
    expect(first.buffer.byteLength).toBeLessThan(128 * 1024);
    // ... a 40 000-byte one moves it: the next comes out as a view of a 128 KiB chunk.
    const second = await inflate(hexText(43, 40_000));
    expect(second.buffer.byteLength).toBeGreaterThanOrEqual(128 * 1024);
    expect([first, second]).toEqual([hexText(42, 40_000), hexText(43, 40_000)]);
  });

  it('hands a large inflated message on without a copy, and a small one as a copy that holds no large buffer', async () => {
    const extension = open();
    const inflate = async (message: Buffer) => (await extension.processIncomingFrame(compressed(deflateMessage(message)))).data;
    // Past a window (32 KiB): the session's later messages come out of zlib in large chunks.
    await inflate(hexText(31, 40_000));
    const small = await inflate(hexText(32, 2_000));
    const large = await inflate(hexText(33, 40_000));
    const next = await inflate(hexText(34, 40_000));
    expect([small, large, next]).toEqual([hexText(32, 2_000), hexText(33, 40_000), hexText(34, 40_000)]);
    // Two views of zlib's one output buffer: no copy was made of either.
    expect(large.buffer).toBe(next.buffer);
    // A view would keep zlib's whole buffer alive for as long as the user keeps 2 000 bytes.
    expect(small.buffer).not.toBe(large.buffer);
  });

  it('inflates within maxIncomingSize: exactly the limit passes, one byte more is 1009, fragments counted together', async () => {
    const limits = { maxIncomingSize: 100_000 };
    const exact = open('permessage-deflate', {}, limits);
    expect((await exact.processIncomingFrame(compressed(deflateMessage(Buffer.alloc(100_000))))).data.length).toBe(100_000);
    await expectClose(() => open('permessage-deflate', {}, limits).processIncomingFrame(compressed(deflateMessage(Buffer.alloc(100_001)))), 1009);

    const fragmented = open('permessage-deflate', {}, limits);
    const whole = deflateMessage(Buffer.alloc(120_000));
    const half = Math.floor(whole.length / 2);
    const first = await fragmented.processIncomingFrame(compressed(whole.subarray(0, half), false, true));
    expect(first.data.length).toBeLessThanOrEqual(100_000);
    await expectClose(() => fragmented.processIncomingFrame(compressed(whole.subarray(half), true, false)), 1009);
  });

  it('refuses a 32 MiB zip bomb (about 32 KiB on the wire) with 1009 under a 1 MiB limit', async () => {
    // Memory and the rest of the server under a 100 MiB bomb: test/e2e/permessage-deflate.spec.ts.
    const bomb = deflateMessage(Buffer.alloc(32 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(64 * 1024);
    await expectClose(() => open('permessage-deflate', {}, { maxIncomingSize: 1024 * 1024 }).processIncomingFrame(compressed(bomb)), 1009);
  });

  it('refuses data that is not DEFLATE with 1007, and RSV1 on a continuation frame with 1002', async () => {
    await expectClose(() => open().processIncomingFrame(compressed(Buffer.from([0xff, 0xff, 0xff]))), 1007);
    const extension = open();
    await extension.processIncomingFrame(compressed(hex('f2 48 cd'), false, true));
    await expectClose(() => extension.processIncomingFrame(compressed(hex('c9 c9 07 00'), true, true)), 1002);
    // Also on a message that started uncompressed (RFC 7692 §6: only a message's first frame carries RSV1).
    const plainFirst = open();
    await plainFirst.processIncomingFrame(new Frame.Text(false, Buffer.from('He')));
    await expectClose(() => plainFirst.processIncomingFrame(compressed(hex('c9 c9 07 00'), true, true)), 1002);
  });

  it('settles what was in flight when disposed, frees its limiter slot, and refuses work after', async () => {
    const extension = negotiate('permessage-deflate', {}, { maxIncomingSize: 2 ** 31 - 1 })!;
    const bomb = deflateMessage(Buffer.alloc(32 * 1024 * 1024));
    const inFlight = Promise.resolve(extension.processIncomingFrame(compressed(bomb))).then(
      () => 'settled',
      () => 'settled',
    );
    await new Promise((resolve) => setImmediate(resolve));
    extension.dispose();
    extension.dispose(); // twice is harmless
    await expect(inFlight).resolves.toBe('settled');
    await expect(failure(() => extension.processOutgoingFrame(new Frame.Text(true, hexText(14, 5000))))).resolves.toBeInstanceOf(Error);
    // A lost slot would leave some of these waiting forever.
    const jobs = Array.from({ length: 10 }, (_, i) => zlibLimiter.run(async () => i));
    await expect(Promise.all(jobs)).resolves.toHaveLength(10);
  });
});

describe('compression cut short by dispose', () => {
  it.each(['permessage-deflate', 'permessage-deflate; server_no_context_takeover'])(
    'settles with the extension’s own outcome, not an internal zlib error, with %s',
    async (offers) => {
      const extension = negotiate(offers)!;
      const message = noise(1, 2 * 1024 * 1024);
      const outcome = Promise.resolve(extension.processOutgoingFrame(new Frame.Binary(true, message))).then(
        () => 'resolved',
        (error: Error) => `${error.name}: ${error.message}`,
      );
      await new Promise((resolve) => setImmediate(resolve));
      extension.dispose(); // the connection ended while zlib was compressing
      // Resolving (the frame then finds the connection closed) or the extension's "Connection closed" are both fine.
      expect(await outcome).toMatch(/^(resolved|WebSocketProtocolError: .*)$/);
    },
  );
});

describe('the shared zlib limiter', () => {
  it('30 sessions inflating at once never have more than 10 zlib jobs in flight, and every message comes out right', async () => {
    const run = zlibLimiter.run.bind(zlibLimiter);
    let active = 0;
    let peak = 0;
    const spy = jest.spyOn(zlibLimiter, 'run').mockImplementation((job) =>
      run(async () => {
        active++;
        peak = Math.max(peak, active);
        try {
          return await job();
        } finally {
          active--;
        }
      }),
    );
    try {
      const messages = Array.from({ length: 30 }, (_, i) => hexText(100 + i, 20_000));
      const sessions = messages.map(() => open());
      const out = await Promise.all(sessions.map((extension, i) => extension.processIncomingFrame(compressed(deflateMessage(messages[i])))));
      expect(out.map((frame, i) => frame.data.equals(messages[i]))).toEqual(messages.map(() => true));
      expect(spy).toHaveBeenCalledTimes(30);
      expect(peak).toBeGreaterThan(1);
      expect(peak).toBeLessThanOrEqual(10);
    } finally {
      spy.mockRestore();
    }
  });
});
