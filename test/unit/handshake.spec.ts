import { createHash } from 'node:crypto';
import { get, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import {
  checkProtocolOption,
  computeAcceptKey,
  errorResponse,
  HandshakeError,
  headerTokens,
  offeredProtocols,
  SUPPORTED_VERSION,
  switchingProtocolsResponse,
  validateUpgradeRequest,
} from '../../lib/protocol/handshake.js';
import { parseExtensionOffers, WebSocketExtensionHeader } from '../../lib/protocol/websocket-extension.js';
import { catchError } from './helpers.js';

const RFC_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const RFC_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

function request(overrides: Record<string, string | string[] | undefined> = {}): IncomingHttpHeaders {
  const headers: Record<string, string | string[] | undefined> = {
    host: 'server.example.com',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': RFC_KEY,
    'sec-websocket-version': '13',
    ...overrides,
  };
  for (const name of Object.keys(headers)) if (headers[name] === undefined) delete headers[name];
  return headers as IncomingHttpHeaders;
}

function handshakeError(method: string | undefined, headers: IncomingHttpHeaders): HandshakeError {
  const error = catchError(() => validateUpgradeRequest(method, headers));
  expect(error).toBeInstanceOf(HandshakeError);
  return error as HandshakeError;
}

/** Splits a raw HTTP/1.1 response into status line, headers (lower-cased names) and body. */
function parseResponse(raw: string) {
  const end = raw.indexOf('\r\n\r\n');
  expect(end).toBeGreaterThan(0);
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    expect(colon).toBeGreaterThan(0);
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { statusLine, headers, body: raw.slice(end + 4) };
}

describe('computeAcceptKey', () => {
  it("gives RFC 6455 §1.3's example accept value", () => {
    expect(computeAcceptKey(RFC_KEY)).toBe(RFC_ACCEPT);
  });

  it('is base64(SHA-1(key + the RFC GUID)) for other keys', () => {
    const key = 'AQIDBAUGBwgJCgsMDQ4PEA==';
    const expected = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    expect(computeAcceptKey(key)).toBe(expected);
    expect(computeAcceptKey(key)).not.toBe(RFC_ACCEPT);
  });
});

describe('validateUpgradeRequest', () => {
  it('accepts a well-formed request (RFC 6455 §1.3) and returns the key', () => {
    expect(validateUpgradeRequest('GET', request())).toBe(RFC_KEY);
  });

  it('version 13 is the supported one', () => {
    expect(SUPPORTED_VERSION).toBe('13');
  });

  it.each([['8'], ['12'], ['14'], ['0'], ['']])(
    'answers Sec-WebSocket-Version %p with 426 and Sec-WebSocket-Version: 13',
    (version) => {
      const error = handshakeError('GET', request({ 'sec-websocket-version': version }));
      expect(error.status).toBe(426);
      expect(error.headers).toEqual({ 'Sec-WebSocket-Version': '13' });
    },
  );

  it('answers a missing Sec-WebSocket-Version with 426', () => {
    const error = handshakeError('GET', request({ 'sec-websocket-version': undefined }));
    expect(error.status).toBe(426);
    expect(error.headers['Sec-WebSocket-Version']).toBe('13');
  });

  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['too short', 'dGhlIHNhbXBsZQ=='],
    ['not base64', 'dGhlIHNhbXBsZSBub25jZQ!!'],
    ['24 chars without padding', 'dGhlIHNhbXBsZSBub25jZQAA'],
    ['20 bytes of nonce', 'dGhlIHNhbXBsZSBub25jZSEhIQ=='],
    ['a single pad', 'dGhlIHNhbXBsZSBub25jZQA='],
  ])('answers a %s Sec-WebSocket-Key with 400', (_name, key) => {
    expect(handshakeError('GET', request({ 'sec-websocket-key': key })).status).toBe(400);
  });

  it('accepts any 16-byte base64 key', () => {
    const key = Buffer.from(Array.from({ length: 16 }, (_, i) => 255 - i * 3)).toString('base64');
    expect(key).toHaveLength(24);
    expect(validateUpgradeRequest('GET', request({ 'sec-websocket-key': key }))).toBe(key);
  });

  it.each([['keep-alive, Upgrade'], ['upgrade'], ['UPGRADE'], ['Upgrade,keep-alive'], [' keep-alive ,  upgrade ']])(
    'matches Connection: %p case-insensitively as a comma list',
    (connection) => {
      expect(validateUpgradeRequest('GET', request({ connection }))).toBe(RFC_KEY);
    },
  );

  it('matches a Connection header given as several values', () => {
    expect(validateUpgradeRequest('GET', request({ connection: ['keep-alive', 'Upgrade'] }))).toBe(RFC_KEY);
  });

  it.each([['WebSocket'], ['WEBSOCKET'], ['h2c, websocket'], ['websocket, foo']])(
    'matches Upgrade: %p case-insensitively as a comma list',
    (upgrade) => {
      expect(validateUpgradeRequest('GET', request({ upgrade }))).toBe(RFC_KEY);
    },
  );

  it.each([
    ['missing Connection', { connection: undefined }],
    ['Connection: keep-alive', { connection: 'keep-alive' }],
    ['Connection: upgraded (token, not substring)', { connection: 'upgraded' }],
    ['Connection: keep-alive upgrade (no comma)', { connection: 'keep-alive upgrade' }],
    ['missing Upgrade', { upgrade: undefined }],
    ['Upgrade: h2c', { upgrade: 'h2c' }],
    ['Upgrade: websockets', { upgrade: 'websockets' }],
  ])('answers %s with 400', (_name, overrides) => {
    expect(handshakeError('GET', request(overrides)).status).toBe(400);
  });

  it.each([['POST'], ['PUT'], ['HEAD'], ['get'], [undefined]])('answers method %p with 405 and Allow: GET', (method) => {
    const error = handshakeError(method, request());
    expect(error.status).toBe(405);
    expect(error.headers).toEqual({ Allow: 'GET' });
  });

  it('HandshakeError is an Error with a message', () => {
    const error = handshakeError('GET', request({ 'sec-websocket-key': undefined }));
    expect(error).toBeInstanceOf(Error);
    expect(error.message.length).toBeGreaterThan(0);
  });
});

describe('offeredProtocols and headerTokens', () => {
  it('lists the offered subprotocols in order', () => {
    expect(offeredProtocols(request({ 'sec-websocket-protocol': 'chat, superchat' }))).toEqual(['chat', 'superchat']);
  });

  it('trims tokens and drops empty ones', () => {
    expect(offeredProtocols(request({ 'sec-websocket-protocol': ' chat ,,superchat , ' }))).toEqual([
      'chat',
      'superchat',
    ]);
  });

  it('is empty when nothing is offered', () => {
    expect(offeredProtocols(request())).toEqual([]);
    expect(offeredProtocols(request({ 'sec-websocket-protocol': '' }))).toEqual([]);
  });

  it('keeps the case of protocol names (they are case-sensitive)', () => {
    expect(offeredProtocols(request({ 'sec-websocket-protocol': 'MQTT, mqtt' }))).toEqual(['MQTT', 'mqtt']);
  });

  it('headerTokens joins repeated header values', () => {
    expect(headerTokens(['a, b', 'c'])).toEqual(['a', 'b', 'c']);
    expect(headerTokens(undefined)).toEqual([]);
    expect(headerTokens('one')).toEqual(['one']);
  });
});

describe('token checks (RFC 7230 tokens, RFC 6455 §4.1 and §9.1)', () => {
  const status = (fn: () => unknown) => (catchError(fn) as HandshakeError | undefined)?.status;

  it.each([['chat.v1'], ['v2.json'], ["a!#$%&'*+-.^_`|~9"], ['chat.v1, superchat']])('takes the subprotocols %p', (value) => {
    expect(status(() => offeredProtocols(request({ 'sec-websocket-protocol': value })))).toBeUndefined();
  });

  it.each([['chat v1'], ['chat"v1'], ['chat/v1'], ['chat;v1'], ['chat:v1'], ['chät'], ['a, a']])(
    'answers 400 to the subprotocols %p: not distinct tokens',
    (value) => {
      expect(status(() => offeredProtocols(request({ 'sec-websocket-protocol': value })))).toBe(400);
    },
  );

  it.each([
    ['permessage-deflate'],
    ['permessage-deflate; client_max_window_bits'],
    ['permessage-deflate; client_max_window_bits=10; server_no_context_takeover, x-webkit-deflate-frame'],
    ['foo; bar="quoted, with a comma", baz'],
    ['foo; bar = 1'],
  ])('takes the extension offers %p', (value) => {
    expect(status(() => parseExtensionOffers(value))).toBeUndefined();
  });

  it('parses offers into names and parameters, in order, quoted commas and semicolons kept', () => {
    const offers = parseExtensionOffers(['permessage-deflate; client_max_window_bits, ', 'foo; bar="a, b; c"; baz = 1']);
    expect(offers.map((offer) => [offer.name, offer.parameters])).toEqual([
      ['permessage-deflate', ['client_max_window_bits']],
      ['foo', ['bar="a, b; c"', 'baz = 1']],
    ]);
    expect(Object.fromEntries(offers[1].parseParameters()!)).toEqual({ bar: 'a, b; c', baz: '1' });
    expect(Object.fromEntries(offers[0].parseParameters()!)).toEqual({ client_max_window_bits: true });
    expect(new WebSocketExtensionHeader('x', ['a', 'A=1']).parseParameters()).toBeUndefined();
  });

  it.each([['foo bar'], ['foo;'], ['foo; =1'], ['foo; a=b c'], ['foo; a="unterminated'], ['"foo"'], ['foo; a=b=c']])(
    'answers 400 to the malformed extension offers %p',
    (value) => {
      expect(status(() => parseExtensionOffers(value))).toBe(400);
    },
  );

  it('refuses a protocol option that no client could offer, at startup', () => {
    expect(checkProtocolOption('chat.v1')).toBe('chat.v1');
    expect(checkProtocolOption(undefined)).toBeUndefined();
    expect(() => checkProtocolOption('chat v1')).toThrow(/"protocol" must be a token/);
    expect(() => checkProtocolOption('')).toThrow(TypeError);
  });
});

describe('switchingProtocolsResponse', () => {
  it("is the RFC 6455 §1.3 101 response for the RFC's key", () => {
    const raw = switchingProtocolsResponse(RFC_KEY);
    expect(raw.endsWith('\r\n\r\n')).toBe(true);
    const { statusLine, headers, body } = parseResponse(raw);
    expect(statusLine).toBe('HTTP/1.1 101 Switching Protocols');
    expect(headers['upgrade'].toLowerCase()).toBe('websocket');
    expect(headers['connection'].toLowerCase()).toBe('upgrade');
    expect(headers['sec-websocket-accept']).toBe(RFC_ACCEPT);
    expect(headers['sec-websocket-protocol']).toBeUndefined();
    expect(body).toBe('');
  });

  it('names the selected subprotocol', () => {
    const { headers } = parseResponse(switchingProtocolsResponse(RFC_KEY, 'chat'));
    expect(headers['sec-websocket-protocol']).toBe('chat');
  });
});

describe('errorResponse', () => {
  it.each([
    [400, 'Bad Request', 'Missing or malformed Sec-WebSocket-Key', {}],
    [405, 'Method Not Allowed', 'GET only', { Allow: 'GET' }],
    [426, 'Upgrade Required', 'Unsupported Sec-WebSocket-Version', { 'Sec-WebSocket-Version': '13' }],
    [503, 'Service Unavailable', 'Server is shutting down', {}],
  ])('%i: status line, Connection: close, extra headers, a JSON body as Nest answers HTTP errors', (status, reason, message, extra) => {
    const { statusLine, headers, body } = parseResponse(errorResponse(status, message, extra));
    expect(statusLine).toBe(`HTTP/1.1 ${status} ${reason}`);
    expect(headers['connection']).toBe('close');
    expect(headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(body)).toEqual({ message, error: reason, statusCode: status });
    expect(Number(headers['content-length'])).toBe(body.length); // ASCII: one byte per char
    for (const [name, value] of Object.entries(extra)) expect(headers[name.toLowerCase()]).toBe(value);
  });

  it('has the keys in the order Nest writes them', () => {
    const { body } = parseResponse(errorResponse(403, 'Origin not allowed'));
    expect(body).toBe('{"message":"Origin not allowed","error":"Forbidden","statusCode":403}');
  });

  it('counts Content-Length in bytes, not characters, and escapes what JSON must', () => {
    const { headers, body } = parseResponse(errorResponse(400, 'é€"'));
    expect(body).toBe('{"message":"é€\\"","error":"Bad Request","statusCode":400}');
    // 58 characters; é is 2 bytes and € 3 in UTF-8: 60 bytes.
    expect(headers['content-length']).toBe('60');
  });

  it("is read correctly by Node's HTTP client (an independent parser)", async () => {
    const raw = errorResponse(426, 'Nicht unterstützt – €', { 'Sec-WebSocket-Version': '13' });
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.resume(); // read (and drop) the request, so the socket can finish closing
      socket.end(raw);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const response = await new Promise<IncomingMessage>((resolve, reject) =>
        get({ host: '127.0.0.1', port, path: '/', agent: false }, resolve).on('error', reject),
      );
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      expect(response.statusCode).toBe(426);
      expect(response.headers['sec-websocket-version']).toBe('13');
      expect(response.headers['connection']).toBe('close');
      expect(response.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(JSON.parse(body.toString('utf8'))).toEqual({ message: 'Nicht unterstützt – €', error: 'Upgrade Required', statusCode: 426 });
      expect(Number(response.headers['content-length'])).toBe(body.length);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
