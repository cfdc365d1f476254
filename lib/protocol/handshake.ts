/**
 * The server side of the opening handshake (RFC 6455 §4.2), without I/O:
 * checks the upgrade request's headers, computes the accept key, picks a
 * subprotocol, and writes the 101 or the error response (a JSON body, as
 * Nest's HTTP errors). Extension offers are parsed and negotiated in
 * websocket-extension.ts.
 */
import { hash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { describeValue } from './describe-value.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;
export const SUPPORTED_VERSION = '13';

export class HandshakeError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

/** One-shot `hash`: half the time of createHash().update().digest(), and no Hash object per handshake. */
export function computeAcceptKey(key: string): string {
  return hash('sha1', key + GUID, 'base64');
}

/** Splits a comma-separated header (possibly repeated) into trimmed, non-empty tokens. */
export function headerTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token.length > 0);
}

/** `token` is lower case. The usual header is that one token alone, checked without splitting. */
function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (typeof value === 'string' && value.length === token.length && value.toLowerCase() === token) return true;
  return headerTokens(value).some((candidate) => candidate.toLowerCase() === token);
}

/**
 * Checks a request that asked to upgrade; returns its `Sec-WebSocket-Key`.
 * Throws HandshakeError with the status to answer.
 */
export function validateUpgradeRequest(method: string | undefined, headers: IncomingHttpHeaders): string {
  if (method !== 'GET') throw new HandshakeError(405, 'WebSocket upgrade needs a GET request', { Allow: 'GET' });
  if (!hasToken(headers.upgrade, 'websocket')) throw new HandshakeError(400, 'Upgrade header does not offer websocket');
  if (!hasToken(headers.connection, 'upgrade')) throw new HandshakeError(400, 'Connection header does not contain Upgrade');
  if (headers['sec-websocket-version'] !== SUPPORTED_VERSION) {
    throw new HandshakeError(426, `Unsupported Sec-WebSocket-Version: this server speaks version ${SUPPORTED_VERSION}`, {
      'Sec-WebSocket-Version': SUPPORTED_VERSION,
    });
  }
  const key = headers['sec-websocket-key'];
  if (key === undefined || !KEY_PATTERN.test(key.trim())) {
    throw new HandshakeError(400, 'Missing or malformed Sec-WebSocket-Key');
  }
  return key.trim();
}

/** An RFC 7230 token: what subprotocol names and extension names and parameters must be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function isToken(value: string): boolean {
  return TOKEN.test(value);
}

/** A route's or WebSocketUpgrade's `protocol` option, checked at startup: a client could never offer anything else. */
export function checkProtocolOption(protocol: string | undefined): string | undefined {
  if (protocol !== undefined && (typeof protocol !== 'string' || !isToken(protocol))) {
    throw new TypeError(`WebSockets option "protocol" must be a token (letters, digits and !#$%&'*+-.^_\`|~), got ${describeValue(protocol)}`);
  }
  return protocol;
}

/** What a handshake without Sec-WebSocket-Protocol offers: one array for all of them. */
const NO_PROTOCOLS: readonly string[] = Object.freeze([]);

/**
 * The subprotocols the client offered, in its order of preference. Throws
 * HandshakeError(400) unless they are distinct tokens (RFC 6455 §4.1).
 */
export function offeredProtocols(headers: IncomingHttpHeaders): readonly string[] {
  if (headers['sec-websocket-protocol'] === undefined) return NO_PROTOCOLS;
  const offered = headerTokens(headers['sec-websocket-protocol']);
  const bad = offered.find((protocol) => !isToken(protocol));
  if (bad !== undefined) throw new HandshakeError(400, `Sec-WebSocket-Protocol has "${bad}", which is not a token`);
  if (offered.length > 1 && new Set(offered).size !== offered.length) throw new HandshakeError(400, 'Sec-WebSocket-Protocol repeats a subprotocol');
  return offered;
}

/** Built as one string (every handshake writes one): no array of lines to join. */
export function switchingProtocolsResponse(key: string, protocol?: string, extensions?: string): string {
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ' +
    computeAcceptKey(key) +
    (protocol === undefined ? '' : `\r\nSec-WebSocket-Protocol: ${protocol}`) +
    (extensions === undefined ? '' : `\r\nSec-WebSocket-Extensions: ${extensions}`) +
    '\r\n\r\n'
  );
}

/** The body Nest's `HttpException` gives a string message (`new ForbiddenException('...')`), so every refusal reads alike. */
export interface ErrorBody {
  message: string;
  /** The status's reason phrase. */
  error: string;
  statusCode: number;
}

function reasonPhrase(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

export function errorBody(status: number, message: string): ErrorBody {
  return { message, error: reasonPhrase(status), statusCode: status };
}

/** A complete HTTP/1.1 response that refuses the upgrade with an `errorBody` and closes the connection. */
export function errorResponse(status: number, message: string, headers: Record<string, string> = {}): string {
  const body = JSON.stringify(errorBody(status, message));
  const lines = [
    `HTTP/1.1 ${status} ${reasonPhrase(status)}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return lines.join('\r\n') + '\r\n\r\n' + body;
}
