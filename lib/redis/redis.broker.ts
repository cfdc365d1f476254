/**
 * The Redis broker: many processes of one application share topics through
 * one Redis (7 or later). Live messages go over sharded pub/sub (SPUBLISH /
 * SSUBSCRIBE: what works on Redis Cluster too), subscribed only for topics
 * with local subscribers; history in a Stream per topic, its offset and
 * epoch in a hash; presence in a set of processes that heartbeat, with an
 * expiry, so a process killed without goodbye leaves within a bound.
 */
import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { createClient, RESP_TYPES, type RedisClientType } from 'redis';
import type {
  BrokerEvents,
  BrokerMessage,
  HistoryRead,
  PresenceEntry,
  TopicHistoryOptions,
  WebSocketBroker,
} from '../broker/websocket-broker.js';
import { describeValue } from '../protocol/describe-value.js';
import type { StreamPosition } from '../session/topic-membership.js';
import {
  PRESENCE_HEARTBEAT,
  PRESENCE_JOIN,
  PRESENCE_LEAVE,
  PRESENCE_READ,
  PUBLISH_WITH_HISTORY,
  READ_HISTORY,
  SCRIPTS,
  type RedisScript,
} from './redis-scripts.js';
import { TopicKeys, decodeChannelMessage, encodeChannelMessage, encodePayload, messageOf } from './redis-wire.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyRedisClient = RedisClientType<any, any, any, any, any>;

export interface RedisBrokerOptions {
  /** Where Redis is: `redis://host:6379` (`rediss://` for TLS, credentials in the URL). */
  url?: string;
  /**
   * A node-redis client the application already has, instead of `url`: the broker sends its commands on it
   * and subscribes on a duplicate of it (which it closes at shutdown; this one it leaves to the application).
   */
  client?: AnyRedisClient;
  /** What every key and channel starts with, so several applications can share one Redis. Default `nwr`. */
  prefix?: string;
  /**
   * Milliseconds a process stays in presence without a heartbeat: a process killed without saying goodbye
   * leaves every topic's presence within this (plus one heartbeat, a third of it). Default 15 000.
   */
  presenceTtl?: number;
  /** Milliseconds `start` waits for Redis at application bootstrap before going on without it (retrying). Default 10 000. */
  connectTimeout?: number;
}

const DEFAULT_PREFIX = 'nwr';
const DEFAULT_PRESENCE_TTL = 15_000;
const DEFAULT_CONNECT_TIMEOUT = 10_000;
/** How long a topic's epoch and offset outlive its last publish (at least its history's ttl): a week. */
const META_TTL_MS = 7 * 24 * 3600 * 1000;
/** Publishes one process may have waiting for Redis's answer; past it a publish rejects at once. */
const MAX_PUBLISHES_IN_FLIGHT = 10_000;
/** Bulk strings as Buffers: bodies are bytes. */
const AS_BUFFERS = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };

export class RedisBroker implements WebSocketBroker {
  readonly processId = randomUUID();
  private readonly prefix: string;
  private readonly presenceTtl: number;
  private readonly connectTimeout: number;
  private readonly where: string;
  private commands: AnyRedisClient | undefined;
  private subscriber: AnyRedisClient | undefined;
  private events: BrokerEvents | undefined;
  private readonly logger = new Logger('RedisBroker');
  /** Presence entries of this process's sessions, per topic: heartbeats keep them, and a Redis that lost them gets them back. */
  private readonly present = new Map<string, Map<string, PresenceEntry>>();
  private heartbeat: NodeJS.Timeout | undefined;
  /** Leaves Redis did not take (it was away): sent again when it is back, or the entries would stay while this process heartbeats. */
  private readonly unsentLeaves = new Map<string, Map<string, PresenceEntry>>();
  /** Topics unsubscribed while Redis was away: node-redis would subscribe them again on reconnecting. */
  private readonly staleTopics = new Set<string>();
  /** Publishes sent and not answered: bounded, so a caller that does not await cannot queue without limit. */
  private publishesInFlight = 0;
  /** When the current outage began (logged once), or undefined while connected. */
  private outageSince: number | undefined;
  /** One listener for every topic's channel: node-redis keeps a set of listeners per channel, so subscribing again adds nothing. */
  private readonly onShardMessage = (message: Buffer, channel: Buffer) => this.onChannelMessage(topicOfChannel(channel, this.prefix), message);
  private stopped = false;
  /** The connections are being closed: what comes now is not sent (the process's presence expires with it). */
  private closed = false;

  constructor(private readonly options: RedisBrokerOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`new RedisBroker(options): options must be an object with url or client, got ${describeValue(options)}`);
    }
    const { url, client } = options;
    if ((url === undefined) === (client === undefined)) {
      throw new TypeError(`new RedisBroker(options): give url (redis://host:6379) or client (a node-redis client), exactly one; got ${describeValue(options)}`);
    }
    if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
      throw new TypeError(`new RedisBroker(options): url must be a redis:// or rediss:// URL, got ${describeValue(url)}`);
    }
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    if (typeof this.prefix !== 'string' || this.prefix.length === 0 || /[{}]/.test(this.prefix)) {
      throw new TypeError(`new RedisBroker(options): prefix must be a non-empty string without { or }, got ${describeValue(options.prefix)}`);
    }
    this.presenceTtl = positiveInteger('presenceTtl', options.presenceTtl ?? DEFAULT_PRESENCE_TTL);
    this.connectTimeout = positiveInteger('connectTimeout', options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT);
    this.where = url === undefined ? 'the given client' : redactedUrl(url);
  }

  async start(events: BrokerEvents): Promise<void> {
    this.events = events;
    // Commands fail at once while Redis is away (a publish must reject, not wait in an unbounded queue).
    const commands = this.options.client ?? createClient({ url: this.options.url, disableOfflineQueue: true });
    const subscriber = commands.duplicate({ disableOfflineQueue: true });
    this.commands = commands;
    this.subscriber = subscriber;
    // Each (re)connection loads the scripts first, so no EVALSHA misses them (a restarted Redis has none),
    // and a leave sent at shutdown needs no second round trip that the closing client would refuse.
    commands.on('ready', () => this.loadScripts(commands));
    if (commands.isReady) this.loadScripts(commands);
    for (const client of [commands, subscriber]) {
      // Without a listener, node-redis's 'error' event would end the process.
      client.on('error', (error: Error) => this.onConnectionError(error));
      client.on('ready', () => this.onReady());
    }
    const connecting = Promise.all([commands, subscriber].map((client) => (client.isOpen ? undefined : client.connect())));
    // The connection keeps retrying after the wait: the application starts without Redis rather than not at all.
    connecting.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.connectTimeout)));
    const outcome = await Promise.race([connecting.then(() => 'ready' as const, () => 'failed' as const), waited]);
    clearTimeout(timer);
    if (outcome !== 'ready') this.beginOutage(`no connection within ${this.connectTimeout} ms of startup`);
    this.heartbeat = setInterval(() => this.beat(), Math.max(1, Math.floor(this.presenceTtl / 3))).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    // Sessions closed just before leave their topics and presence in callbacks still queued: those go first.
    await new Promise((resolve) => setImmediate(resolve));
    this.closed = true;
    // Nothing waits on the subscriptions; the commands (the last leaves) may finish, unless Redis is away.
    if (this.subscriber?.isOpen) this.subscriber.destroy();
    const commands = this.commands;
    if (this.options.client !== undefined || commands?.isOpen !== true) return;
    if (commands.isReady) await commands.close().catch(() => commands.destroy());
    else commands.destroy();
  }

  async subscribe(topic: string): Promise<void> {
    const subscriber = this.ready(this.subscriber);
    this.staleTopics.delete(topic);
    await subscriber.sSubscribe(this.keysOf(topic).channel, this.onShardMessage, true);
  }

  async unsubscribe(topic: string): Promise<void> {
    if (this.closed) return;
    if (this.subscriber?.isReady !== true) {
      this.staleTopics.add(topic);
      return;
    }
    await this.subscriber.sUnsubscribe(this.keysOf(topic).channel, this.onShardMessage, true);
  }

  async publish(message: BrokerMessage, history: TopicHistoryOptions | undefined): Promise<StreamPosition | undefined> {
    if (this.publishesInFlight >= MAX_PUBLISHES_IN_FLIGHT) {
      throw new Error(`${MAX_PUBLISHES_IN_FLIGHT} publishes are waiting for Redis at ${this.where}: await publishes, or publish less at once`);
    }
    this.publishesInFlight++;
    try {
      return await this.send(message, history);
    } finally {
      this.publishesInFlight--;
    }
  }

  private async send(message: BrokerMessage, history: TopicHistoryOptions | undefined): Promise<StreamPosition | undefined> {
    const { kind, body } = encodePayload(message.payload);
    const keys = this.keysOf(message.topic);
    if (history === undefined) {
      await this.ready(this.commands).sendCommand(['SPUBLISH', keys.channel, encodeChannelMessage(kind, message.except, body)]);
      return undefined;
    }
    const [offset, epoch] = (await this.run(
      PUBLISH_WITH_HISTORY,
      [keys.history, keys.meta],
      [keys.channel, kind, message.except ?? '', body, String(history.size), String(history.ttl), String(metaTtl(history)), randomUUID()],
    )) as [number, string];
    return { offset: Number(offset), epoch: String(epoch) };
  }

  async readHistory(topic: string, since: StreamPosition | undefined, history: TopicHistoryOptions): Promise<HistoryRead> {
    const keys = this.keysOf(topic);
    const [epochBytes, topOffset, nowBytes, entries] = (await this.run(
      READ_HISTORY,
      [keys.history, keys.meta],
      [since === undefined ? '' : String(since.offset), since?.epoch ?? '', randomUUID(), String(metaTtl(history))],
      AS_BUFFERS,
    )) as [Buffer, number, Buffer, Array<[Buffer, Buffer[]]>];
    const top = { offset: Number(topOffset), epoch: epochBytes.toString('utf8') };
    if (since === undefined) return { top, complete: false, messages: [] };
    const oldestKept = Number(nowBytes.toString('latin1')) - history.ttl;
    const messages: BrokerMessage[] = [];
    for (const [id, fields] of entries) {
      const field = fieldsOf(fields);
      if (Number(field.t?.toString('latin1')) < oldestKept) continue;
      const position = { offset: Number(id.toString('latin1').split('-')[0]), epoch: top.epoch };
      const message = messageOf(topic, field.k?.toString('latin1') ?? '', field.x?.toString('latin1'), field.d ?? Buffer.alloc(0), position);
      if (message !== undefined) messages.push(message);
    }
    const complete =
      since.epoch === top.epoch &&
      since.offset <= top.offset &&
      messages.length === top.offset - since.offset &&
      (messages.length === 0 || messages[0].position!.offset === since.offset + 1);
    return { top, complete, messages };
  }

  async join(topic: string, entry: PresenceEntry): Promise<void> {
    forget(this.unsentLeaves, topic, entry);
    remember(this.present, topic, entry);
    await this.sendJoin(topic, entry);
  }

  async leave(topic: string, entry: PresenceEntry): Promise<void> {
    forget(this.present, topic, entry);
    if (this.closed) return;
    try {
      await this.sendLeave(topic, entry);
    } catch (error) {
      remember(this.unsentLeaves, topic, entry);
      throw error;
    }
  }

  async presence(topic: string): Promise<PresenceEntry[]> {
    const keys = this.keysOf(topic);
    const entries = (await this.run(PRESENCE_READ, [keys.presenceProcesses], [keys.channel])) as string[];
    return entries.map((entry) => JSON.parse(String(entry)) as PresenceEntry);
  }

  private async sendLeave(topic: string, entry: PresenceEntry): Promise<void> {
    const keys = this.keysOf(topic);
    await this.run(PRESENCE_LEAVE, [keys.presenceProcesses, keys.presenceOf(this.processId)], [keys.channel, this.processId, entry.session]);
    forget(this.unsentLeaves, topic, entry);
  }

  private sendJoin(topic: string, entry: PresenceEntry): Promise<unknown> {
    const keys = this.keysOf(topic);
    return this.run(
      PRESENCE_JOIN,
      [keys.presenceProcesses, keys.presenceOf(this.processId)],
      [keys.channel, this.processId, String(this.presenceTtl), entry.session, JSON.stringify(entry)],
    );
  }

  private onChannelMessage(topic: string | undefined, raw: Buffer): void {
    if (topic === undefined) return;
    let decoded: ReturnType<typeof decodeChannelMessage>;
    try {
      decoded = decodeChannelMessage(topic, raw);
    } catch (error) {
      this.logger.warn(`RedisBroker: a message on ${JSON.stringify(topic)} could not be read (${(error as Error).message}): it was not written by this broker`);
      return;
    }
    if (decoded === undefined) return;
    if ('entry' in decoded) this.events?.presence(decoded);
    else this.events?.message(decoded);
  }

  /** Keeps this process's presence alive, and clears processes whose presence expired from those topics. */
  private beat(): void {
    if (!this.commands?.isReady) return;
    for (const topic of this.present.keys()) {
      const keys = this.keysOf(topic);
      this.run(PRESENCE_HEARTBEAT, [keys.presenceProcesses, keys.presenceOf(this.processId)], [keys.channel, this.processId, String(this.presenceTtl)]).catch(
        // The next beat tries again; an outage is logged where it is noticed.
        () => undefined,
      );
    }
  }

  private onConnectionError(error: Error): void {
    if (!this.stopped) this.beginOutage(error.message || error.name);
  }

  private beginOutage(cause: string): void {
    if (this.outageSince !== undefined) return;
    this.outageSince = Date.now();
    this.logger.error(
      `Redis at ${this.where} is unreachable (${cause}): reconnecting. Until it is back, publishes and subscribes reject ` +
        'and other processes do not hear this one; sessions here stay open',
    );
  }

  /** Both connections are back: resubscribed (node-redis does it before 'ready'), so what was missed can be read back. */
  private onReady(): void {
    if (this.outageSince === undefined || !this.commands?.isReady || !this.subscriber?.isReady) return;
    const seconds = ((Date.now() - this.outageSince) / 1000).toFixed(1);
    this.outageSince = undefined;
    this.logger.log(`Redis at ${this.where} is back after ${seconds} s: topics resubscribed, missed history being read back`);
    for (const topic of this.staleTopics) this.subscriber.sUnsubscribe(this.keysOf(topic).channel, this.onShardMessage, true).catch(() => undefined);
    this.staleTopics.clear();
    // Sessions that left meanwhile leave; a Redis that restarted without persistence lost the others: they join again.
    for (const [topic, entries] of this.unsentLeaves) {
      for (const entry of entries.values()) this.sendLeave(topic, entry).catch(() => undefined);
    }
    for (const [topic, entries] of this.present) {
      for (const entry of entries.values()) this.sendJoin(topic, entry).catch(() => undefined);
    }
    this.events?.resumed();
  }

  private keysOf(topic: string): TopicKeys {
    return new TopicKeys(this.prefix, topic);
  }

  /** The client, if connected: a command while Redis is away fails at once instead of waiting. */
  private ready(client: AnyRedisClient | undefined): AnyRedisClient {
    if (client === undefined) throw new Error('RedisBroker has not started: it starts with the application (app.init() or app.listen())');
    if (!client.isReady) throw new Error(`Redis at ${this.where} is unreachable (reconnecting)`);
    return client;
  }

  private loadScripts(client: AnyRedisClient): void {
    for (const script of SCRIPTS) client.sendCommand(['SCRIPT', 'LOAD', script.source]).catch(() => undefined);
  }

  /** Runs a script by its hash, loading it if this Redis lacks it (its cache was flushed meanwhile). */
  private async run(script: RedisScript, keys: string[], args: Array<string | Buffer>, options?: typeof AS_BUFFERS): Promise<unknown> {
    const client = this.ready(this.commands);
    const tail = [String(keys.length), ...keys, ...args];
    try {
      return await client.sendCommand(['EVALSHA', script.sha, ...tail], options);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return client.sendCommand(['EVAL', script.source, ...tail], options);
    }
  }
}

/** The topic of a channel this broker subscribed to: `<prefix>:{<topic>}`. */
function topicOfChannel(channel: Buffer, prefix: string): string | undefined {
  const name = channel.toString('utf8');
  return name.startsWith(`${prefix}:{`) && name.endsWith('}') ? name.slice(prefix.length + 2, -1) : undefined;
}

function remember(byTopic: Map<string, Map<string, PresenceEntry>>, topic: string, entry: PresenceEntry): void {
  let entries = byTopic.get(topic);
  if (entries === undefined) byTopic.set(topic, (entries = new Map()));
  entries.set(entry.session, entry);
}

function forget(byTopic: Map<string, Map<string, PresenceEntry>>, topic: string, entry: PresenceEntry): void {
  const entries = byTopic.get(topic);
  if (entries === undefined || !entries.delete(entry.session)) return;
  if (entries.size === 0) byTopic.delete(topic);
}

function metaTtl(history: TopicHistoryOptions): number {
  return Math.max(history.ttl, META_TTL_MS);
}

function fieldsOf(flat: Buffer[]): Record<string, Buffer | undefined> {
  const fields: Record<string, Buffer> = {};
  for (let n = 0; n + 1 < flat.length; n += 2) fields[flat[n].toString('latin1')] = flat[n + 1];
  return fields;
}

function positiveInteger(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new RangeError(`new RedisBroker(options): ${name} must be a whole number of milliseconds from 1, got ${describeValue(value)}`);
  }
  return value as number;
}

/** The URL without its password, for log lines. */
function redactedUrl(url: string): string {
  return url.replace(/\/\/([^@/]*):[^@/]*@/, '//$1:***@');
}
