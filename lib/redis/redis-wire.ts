/**
 * What the Redis broker puts on a topic's channel and in its stream, and
 * the names of its keys. A channel message is a one-line header and the
 * body's bytes: `<kind>|<except>|<offset>|<epoch>\n<body>`, so that the
 * publish script can add the position without parsing the body.
 */
import type { BrokerMessage, PresenceEntry, PresenceEvent, TopicPayload } from '../broker/websocket-broker.js';

/** t: text, b: binary, v: a value as JSON, j: a presence join, l: a presence leave (the entry as JSON). */
export type WireKind = 't' | 'b' | 'v' | 'j' | 'l';

const NEWLINE = 0x0a;

/** The keys of one topic, all with the topic as hash tag, so they share a Redis Cluster slot. */
export class TopicKeys {
  readonly channel: string;
  readonly history: string;
  readonly meta: string;
  /** Sorted set of the processes in presence, scored by when they expire. */
  readonly presenceProcesses: string;

  constructor(
    prefix: string,
    readonly topic: string,
  ) {
    const base = `${prefix}:{${topic}}`;
    this.channel = base;
    this.history = `${base}:h`;
    this.meta = `${base}:m`;
    this.presenceProcesses = `${base}:p`;
  }

  /** A process's presence entries in this topic: session id to data as JSON. */
  presenceOf(processId: string): string {
    return `${this.presenceProcesses}:${processId}`;
  }
}

/** The kind and body bytes of a payload. */
export function encodePayload(payload: TopicPayload): { kind: WireKind; body: Buffer } {
  if (payload.type === 'value') {
    const json = JSON.stringify(payload.value);
    if (json === undefined) throw new TypeError(`publishSerialized(): ${typeof payload.value} has no JSON form, and a value crosses processes as JSON`);
    return { kind: 'v', body: Buffer.from(json, 'utf8') };
  }
  const bytes = payload.bytes;
  return { kind: payload.type === 'text' ? 't' : 'b', body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/** A channel message without position (a topic without history, or a presence event). */
export function encodeChannelMessage(kind: WireKind, except: string | undefined, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${kind}|${except ?? ''}||\n`, 'latin1'), body]);
}

export function presenceBody(entry: PresenceEntry): Buffer {
  return Buffer.from(JSON.stringify(entry), 'utf8');
}

/** What arrived on a topic's channel: a message or a presence event; undefined for what this broker did not write. */
export function decodeChannelMessage(topic: string, raw: Buffer): BrokerMessage | PresenceEvent | undefined {
  const end = raw.indexOf(NEWLINE);
  if (end < 0) return undefined;
  const [kind, except, offset, epoch] = raw.toString('latin1', 0, end).split('|');
  const body = raw.subarray(end + 1);
  if (kind === 'j' || kind === 'l') {
    return { type: kind === 'j' ? 'join' : 'leave', topic, entry: JSON.parse(body.toString('utf8')) as PresenceEntry };
  }
  const position = offset === undefined || offset === '' ? undefined : { offset: Number(offset), epoch: epoch ?? '' };
  return messageOf(topic, kind, except, body, position);
}

/** A message from its stored parts, as a history entry or a channel message holds them. */
export function messageOf(
  topic: string,
  kind: string,
  except: string | undefined,
  body: Buffer,
  position: BrokerMessage['position'],
): BrokerMessage | undefined {
  const payload: TopicPayload | undefined =
    kind === 't'
      ? { type: 'text', bytes: body }
      : kind === 'b'
        ? { type: 'binary', bytes: body }
        : kind === 'v'
          ? { type: 'value', value: JSON.parse(body.toString('utf8')) as unknown }
          : undefined;
  if (payload === undefined) return undefined;
  return {
    topic,
    payload,
    ...(except === undefined || except === '' ? {} : { except }),
    ...(position === undefined ? {} : { position }),
  };
}
