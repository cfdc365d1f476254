/**
 * What a session keeps of its upgrade request's headers, made lighter: the request lives as long as the
 * session (`session.call.request`), and Node's parser gives each request its own copy of every header name
 * in `rawHeaders` and of every value, although most are the same from one client to the next ("Upgrade",
 * "websocket", "13", the Host). Swapping them for one shared copy of equal strings changes nothing anyone
 * can see (a string's identity cannot be observed) and saves a few hundred bytes per idle session.
 */
import type { IncomingMessage } from 'node:http';

/** Values that differ per connection (keys, cookies) would only fill the table: these headers' values repeat. */
const REPEATED_VALUES = new Set([
  'host',
  'connection',
  'upgrade',
  'origin',
  'user-agent',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'accept-encoding',
  'accept-language',
  'cache-control',
  'pragma',
]);
/** Longer values are rare enough not to be worth a lookup. */
const MAX_LENGTH = 256;
/** Header names in use are short; a longer one is left alone, so the names table holds at most 64 KiB of them. */
const MAX_NAME_LENGTH = 64;
/** Each table is bounded: when full (odd headers from many clients), a new one starts; strings shared so far stay shared. */
const MAX_ENTRIES = 1024;

/** A header name as clients write it, and its lower-case form (its key in `headers`) when its values repeat. */
interface KnownName {
  readonly name: string;
  readonly repeatedValuesKey: string | undefined;
}

let names = new Map<string, KnownName>();
let values = new Map<string, string>();

function knownName(name: string): KnownName {
  let known = names.get(name);
  if (known === undefined) {
    const key = name.toLowerCase();
    known = { name, repeatedValuesKey: REPEATED_VALUES.has(key) ? key : undefined };
    if (names.size >= MAX_ENTRIES) names = new Map();
    names.set(name, known);
  }
  return known;
}

function sharedValue(value: string): string {
  if (value.length > MAX_LENGTH) return value;
  const known = values.get(value);
  if (known !== undefined) return known;
  if (values.size >= MAX_ENTRIES) values = new Map();
  values.set(value, value);
  return value;
}

/**
 * Puts shared copies of the header names and of the values that repeat in `request.rawHeaders`, and of
 * those values in `request.headers` (where they are the same strings, unless Node joined repeated headers).
 */
export function shareHeaderStrings(request: IncomingMessage): void {
  const raw = request.rawHeaders;
  // A stand-in request (a user's test of WebSocketUpgrade) may have no raw headers: nothing to share then.
  if (!Array.isArray(raw)) return;
  let headers: IncomingMessage['headers'] | undefined;
  for (let at = 0; at + 1 < raw.length; at += 2) {
    if (raw[at].length > MAX_NAME_LENGTH) continue;
    const { name, repeatedValuesKey } = knownName(raw[at]);
    raw[at] = name;
    if (repeatedValuesKey === undefined) continue;
    // Strings compare by content: the shared copy always goes in, into `headers` too where that holds the same value.
    const value = sharedValue(raw[at + 1]);
    raw[at + 1] = value;
    headers ??= request.headers;
    if (headers[repeatedValuesKey] === value) headers[repeatedValuesKey] = value;
  }
}
