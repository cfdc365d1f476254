/**
 * The soak's cluster scenario (soak.ts runs it; `SOAK_SCENARIOS=cluster npm run soak` runs it alone): three
 * processes of the cluster test's app (test/fixtures/cluster-app.ts, built: RedisBroker on REDIS_URL, the member
 * route, `POST /publish` retrying refused publishes) on a redis-server of its own (append-only, started and
 * removed here through test/support/redis-server.ts). Subscribers spread over the processes on a few history
 * topics (`kept:*`, each message arriving as `{ text, offset, epoch }`) while publishers on every process publish
 * for SOAK_CLUSTER_SECONDS. During the traffic one process is killed with SIGKILL (its subscribers reconnect to
 * another process with their last position, and a replacement process starts), later redis-server too (restarted
 * on the same port and files). With recovery, no subscriber may miss or repeat anything.
 */
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { RedisServer } from '../test/support/redis-server.js';
import { ServerProcess } from '../test/support/server-process.js';
import { envNumber } from './settings.js';

const SECONDS = envNumber('SOAK_CLUSTER_SECONDS', 20, 5);
const SUBSCRIBERS = Math.round(envNumber('SOAK_CLUSTER_SUBSCRIBERS', 300, 3));
const TOPICS = Math.round(envNumber('SOAK_CLUSTER_TOPICS', 4, 1));
const PROCESSES = 3;
/** Each publisher's pause between two publishes: one publisher per topic per process, so about 12 × 40 messages/s. */
const PUBLISH_PAUSE_MS = 25;
/** Publishes per `POST /publish`: a killed process takes at most one such batch's replies with it. */
const BATCH = 20;
/** How long Redis stays dead: long enough that publishes meet the outage, not only the gap between two. */
const REDIS_DOWN_MS = 1000;
/** How long subscribers get to catch up once publishing stopped; past it the scenario fails instead of waiting. */
const CATCH_UP_MS = 20_000;
const RECONNECT_PAUSE_MS = 100;
/** A handshake that hangs (a process stuck) fails after this, and the subscriber tries again elsewhere. */
const HANDSHAKE_TIMEOUT_MS = 5000;
const FIXTURE = fileURLToPath(new URL('../test/fixtures/cluster-app.js', import.meta.url));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const topicName = (t: number) => `kept:soak${t}`;

/** soak.ts's `check` and `figure`. */
export type Check = (scenario: string, what: string, value: string, ok: boolean) => void;
export type Figure = (scenario: string, what: string, value: string) => void;

/** What a history topic's subscriber receives (the fixture's envelope). */
interface Kept {
  text: string;
  offset: number;
  epoch: string;
}
interface Position {
  offset: number;
  epoch: string;
}

/** One app process: the fixture, killed or stopped by the scenario. */
class AppProcess {
  killed = false;
  stopping = false;
  /** How it ended, if it did before the scenario killed or stopped it. */
  diedOnItsOwn: string | undefined;

  private constructor(
    readonly server: ServerProcess,
    readonly port: number,
  ) {
    void server.ended.then(({ code, signal }) => {
      if (!this.killed && !this.stopping) this.diedOnItsOwn = `code ${code}, signal ${signal}`;
    });
  }

  static async start(): Promise<AppProcess> {
    const { server, port } = await ServerProcess.start(FIXTURE, []);
    return new AppProcess(server, port);
  }

  /** kill -9, as a crash would. */
  kill(): Promise<unknown> {
    this.killed = true;
    this.server.kill();
    return this.server.ended;
  }

  /** Asks it to stop (app.close()); resolves with how it ended. */
  async stop(): Promise<string> {
    this.stopping = true;
    try {
      const end = await this.server.stop();
      return `code ${end.code}, signal ${end.signal}`;
    } catch (error) {
      return String(error);
    }
  }

  /** Lines of Nest's error log (stderr) that include `text`. */
  logged(text: string): number {
    return this.server.stderr.split('\n').filter((line) => line.includes(text)).length;
  }
}

/** Per topic: its epoch, and the text first seen at each offset, against which every subscriber's copy is compared. */
class TopicRecord {
  epoch: string | undefined;
  readonly textAt = new Map<number, string>();
}

/** What a subscriber counts as it goes; the scenario adds them up over all subscribers. */
const newTally = () => ({
  deliveries: 0,
  gaps: 0,
  duplicates: 0,
  wrongEpoch: 0,
  wrongText: 0,
  orderViolations: 0,
  /** A publisher's number seen again: a retried publish whose first attempt had happened (its reply was lost). */
  repeats: 0,
  reconnects: 0,
  unrecovered: 0,
  /** Closed other than by the scenario, with the process it was on alive. */
  unexpectedCloses: 0,
});
type Tally = ReturnType<typeof newTally>;

/**
 * A subscriber of one history topic. It checks what it receives as it comes (offsets consecutive from where it
 * subscribed, one epoch, the same text at an offset as every other subscriber, each publisher's numbers never going
 * back) and reconnects with its last position when its connection drops.
 */
class Subscriber {
  /** The offset it subscribed at: it must receive everything after it. */
  start = 0;
  /** The last position it reached: what it reconnects with. */
  last: Position | undefined;
  readonly tally = newTally();
  longestSilenceMs = 0;
  /** When the longest silence ended (performance.now()). */
  longestSilenceEnded = 0;
  lastArrival = 0;
  /** From its connection dropping to its first message through another process. */
  backAfterMs: number | undefined;
  private droppedAt: number | undefined;
  private readonly lastSeq = new Map<string, number>();
  private ws: WebSocket | undefined;
  private closing = false;

  constructor(
    readonly topic: string,
    private readonly record: TopicRecord,
    private app: AppProcess,
    /** A process to reconnect to, other than the one that dropped the connection. */
    private readonly another: (dead: AppProcess) => AppProcess,
  ) {}

  get expectedNext(): number {
    return (this.last?.offset ?? this.start) + 1;
  }

  /** Connects (with `since` when it has a position) and resolves once subscribed; rejects if the handshake fails. */
  connect(): Promise<void> {
    const since = this.last === undefined ? '' : `&offset=${this.last.offset}&epoch=${encodeURIComponent(this.last.epoch)}`;
    const ws = new WebSocket(`ws://127.0.0.1:${this.app.port}/member?topic=${encodeURIComponent(this.topic)}${since}`, { perMessageDeflate: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
    this.ws = ws;
    const app = this.app;
    return new Promise((resolve, reject) => {
      let subscribed = false;
      // Attached before the handshake ends: recovered messages can come in the same packet as the 101.
      ws.on('message', (data) => {
        const text = data.toString();
        if (!text.startsWith('subscribed ')) return this.receive(JSON.parse(text) as Kept);
        const result = JSON.parse(text.slice('subscribed '.length)) as { position?: Position; recovered: boolean };
        if (this.last === undefined) {
          this.start = result.position?.offset ?? 0;
          this.last = result.position;
        } else if (!result.recovered) {
          this.tally.unrecovered++;
        }
        subscribed = true;
        resolve();
      });
      ws.on('error', () => undefined);
      ws.once('close', () => {
        // Not subscribed yet: whoever called connect() tries again.
        if (!subscribed) return reject(new Error(`subscriber of ${this.topic} closed before it was subscribed`));
        if (this.closing) return;
        if (!app.killed) this.tally.unexpectedCloses++;
        void this.reconnect(app);
      });
    });
  }

  close(): Promise<void> {
    this.closing = true;
    const ws = this.ws;
    if (ws === undefined || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
    });
  }

  private async reconnect(dead: AppProcess): Promise<void> {
    this.tally.reconnects++;
    this.droppedAt = performance.now();
    for (;;) {
      this.app = this.another(dead);
      try {
        return await this.connect();
      } catch {
        // A subscribe refused while Redis is away closes the connection: try again shortly.
        if (this.closing) return;
        await sleep(RECONNECT_PAUSE_MS);
      }
    }
  }

  private receive(message: Kept): void {
    const now = performance.now();
    if (this.lastArrival > 0 && now - this.lastArrival > this.longestSilenceMs) {
      this.longestSilenceMs = now - this.lastArrival;
      this.longestSilenceEnded = now;
    }
    this.lastArrival = now;
    if (this.droppedAt !== undefined) {
      this.backAfterMs ??= now - this.droppedAt;
    }
    this.tally.deliveries++;
    this.record.epoch ??= message.epoch;
    if (message.epoch !== this.record.epoch) this.tally.wrongEpoch++;
    const expected = this.expectedNext;
    if (message.offset < expected) {
      this.tally.duplicates++;
      return;
    }
    if (message.offset > expected) this.tally.gaps += message.offset - expected;
    this.last = { offset: message.offset, epoch: message.epoch };
    const first = this.record.textAt.get(message.offset);
    if (first === undefined) this.record.textAt.set(message.offset, message.text);
    else if (first !== message.text) this.tally.wrongText++;
    // Texts are `<publisher>:<batch>:<k>`: the publisher's number is batch × BATCH + k.
    const [publisher, batch, k] = message.text.split(':');
    const seq = Number(batch) * BATCH + Number(k);
    const previous = this.lastSeq.get(publisher) ?? -1;
    if (seq < previous) this.tally.orderViolations++;
    else if (seq === previous) this.tally.repeats++;
    this.lastSeq.set(publisher, seq);
  }
}

/** What the publishers resolved: per topic, each publish's offset and text. */
interface Published {
  resolved: Array<Array<[number, string]>>;
  refused: number;
  /** Requests that failed on a process that was not killed. */
  errors: string[];
}

export async function clusterScenario(check: Check, figure: Figure): Promise<void> {
  console.log(
    `\n5. cluster: ${PROCESSES} processes on one append-only redis-server, ${SUBSCRIBERS} subscribers on ${TOPICS} history topics, ` +
      `publishers on each process for ${SECONDS} s; one process and then Redis killed with SIGKILL during the traffic`,
  );
  const redis = await RedisServer.start({ appendOnly: true });
  // The fixture's configuration: ServerProcess hands the children this process's environment.
  process.env.REDIS_URL = redis.url;
  const apps = await Promise.all(Array.from({ length: PROCESSES }, () => AppProcess.start()));
  const everyApp: AppProcess[] = [...apps];
  // Should the soak end early (a failed check elsewhere, its time limit), no app outlives it.
  const killAll = () => everyApp.forEach((app) => app.server.kill());
  process.once('exit', killAll);
  try {
    await run(redis, apps, everyApp, check, figure);
  } finally {
    process.off('exit', killAll);
    killAll();
    await redis.remove();
    delete process.env.REDIS_URL;
  }
}

async function run(redis: RedisServer, apps: AppProcess[], everyApp: AppProcess[], check: Check, figure: Figure): Promise<void> {
  const records = Array.from({ length: TOPICS }, () => new TopicRecord());
  let turn = 0;
  const another = (dead: AppProcess) => {
    const alive = apps.filter((app) => app !== dead && !app.killed);
    return alive[turn++ % alive.length];
  };
  const subscribers = Array.from({ length: SUBSCRIBERS }, (_, n) => new Subscriber(topicName(n % TOPICS), records[n % TOPICS], apps[n % PROCESSES], another));
  for (let n = 0; n < subscribers.length; n += 50) await Promise.all(subscribers.slice(n, n + 50).map((subscriber) => subscriber.connect()));

  const published: Published = { resolved: records.map(() => []), refused: 0, errors: [] };
  /** Resolves when the slot's replacement is up, while its process is dead. */
  const replaced: Array<Promise<void> | undefined> = apps.map(() => undefined);
  const started = performance.now();
  /** A moment of the run, in seconds since publishing began. */
  const at = (time: number) => `${((time - started) / 1000).toFixed(1)} s`;
  for (const subscriber of subscribers) subscriber.lastArrival = started;
  const deadline = Date.now() + SECONDS * 1000;
  const publisher = async (slot: number, t: number) => {
    const name = `${slot}.${t}`;
    for (let batch = 0; Date.now() < deadline; batch++) {
      const app = apps[slot];
      const url = `http://127.0.0.1:${app.port}/publish?topic=${encodeURIComponent(topicName(t))}&prefix=${name}:${batch}:&count=${BATCH}&pause=${PUBLISH_PAUSE_MS}`;
      try {
        const response = await fetch(url, { method: 'POST' });
        if (!response.ok) throw new Error(`answered ${response.status}: ${await response.text()}`);
        const reply = (await response.json()) as { positions: Position[]; refused: number };
        published.refused += reply.refused;
        reply.positions.forEach((position, k) => published.resolved[t].push([position.offset, `${name}:${batch}:${k}`]));
      } catch (error) {
        // Its process was killed: the batch's replies went with it; go on with the replacement.
        if (app.killed) await replaced[slot];
        else published.errors.push(`publisher ${name}: ${String(error)}`);
      }
    }
  };
  const publishing = Promise.all(apps.flatMap((_, slot) => Array.from({ length: TOPICS }, (_, t) => publisher(slot, t))));

  // The process kill, a quarter into the traffic; its replacement takes its slot (and its publishers).
  await sleep(SECONDS * 250);
  const victim = apps[0];
  const victimSubscribers = subscribers.filter((_, n) => n % PROCESSES === 0).length;
  let replacementUp!: () => void;
  replaced[0] = new Promise((resolve) => (replacementUp = resolve));
  const killedAt = performance.now();
  await victim.kill();
  apps[0] = await AppProcess.start();
  everyApp.push(apps[0]);
  replacementUp();
  replaced[0] = undefined;
  figure('cluster', `process killed at ${at(killedAt)}`, `its ${victimSubscribers} subscribers reconnected elsewhere; replacement up after ${((performance.now() - killedAt) / 1000).toFixed(1)} s`);

  // The Redis kill, a bit past half the traffic, with every process (the replacement included) connected to it.
  await sleep(Math.max(0, SECONDS * 550 - (performance.now() - started)));
  const outageApps = [...apps];
  const outageLinesBefore = outageApps.map((app) => app.logged('is unreachable'));
  const redisKilledAt = performance.now();
  await redis.kill();
  await sleep(REDIS_DOWN_MS);
  await redis.restart();
  figure('cluster', `redis-server killed at ${at(redisKilledAt)}`, `restarted (same port, append-only file) ${((performance.now() - redisKilledAt) / 1000).toFixed(1)} s later`);

  await publishing;
  const publishSeconds = (performance.now() - started) / 1000;
  const tops = published.resolved.map((entries) => Math.max(...entries.map(([offset]) => offset)));
  const caughtUp = () => subscribers.every((subscriber, n) => subscriber.expectedNext > tops[n % TOPICS]);
  const catchUpDeadline = Date.now() + CATCH_UP_MS;
  while (!caughtUp() && Date.now() < catchUpDeadline) await sleep(100);
  // Anything after the last publish would be a duplicate or a stray: give it a moment to show.
  await sleep(500);

  const total = (key: keyof Tally) => subscribers.reduce((sum, subscriber) => sum + subscriber.tally[key], 0);
  const resolvedCount = published.resolved.reduce((total, entries) => total + entries.length, 0);
  const deliveries = total('deliveries');
  figure('cluster', 'messages published (resolved)', `${resolvedCount} in ${publishSeconds.toFixed(1)} s by ${PROCESSES * TOPICS} publishers, offsets up to ${tops.join(', ')}`);
  figure('cluster', 'deliveries', `${deliveries} (${Math.round(deliveries / publishSeconds)} /s)`);
  figure('cluster', 'publishes refused during the outage (then retried)', `${published.refused}`);
  const backAfter = subscribers.flatMap((subscriber) => (subscriber.backAfterMs === undefined ? [] : [subscriber.backAfterMs]));
  figure('cluster', 'reconnects', `${total('reconnects')}; the slowest got its first message through another process ${Math.round(Math.max(0, ...backAfter))} ms after its connection dropped`);
  const silence = (group: Subscriber[]) => {
    const worst = group.reduce((longest, subscriber) => (subscriber.longestSilenceMs > longest.longestSilenceMs ? subscriber : longest));
    return `${Math.round(worst.longestSilenceMs)} ms, until ${at(worst.longestSilenceEnded)}`;
  };
  const moved = subscribers.filter((subscriber) => subscriber.tally.reconnects > 0);
  const stayed = subscribers.filter((subscriber) => subscriber.tally.reconnects === 0);
  figure(
    'cluster',
    'longest time a subscriber went without a message',
    `${moved.length ? `${silence(moved)} (one that reconnected)` : ''}${moved.length && stayed.length ? '; ' : ''}${stayed.length ? `${silence(stayed)} (one that stayed)` : ''}`,
  );

  const short = subscribers.filter((subscriber, n) => subscriber.expectedNext <= tops[n % TOPICS]);
  const beyond = subscribers.filter((subscriber, n) => subscriber.expectedNext > tops[n % TOPICS] + 1);
  check(
    'cluster',
    'offsets consecutive per subscriber, first to last: gaps / duplicates / short of the last / past it',
    `${total('gaps')} / ${total('duplicates')} / ${short.length} / ${beyond.length}`,
    total('gaps') === 0 && total('duplicates') === 0 && short.length === 0 && beyond.length === 0,
  );
  check('cluster', 'messages of another epoch / reconnects that did not recover', `${total('wrongEpoch')} / ${total('unrecovered')}`, total('wrongEpoch') === 0 && total('unrecovered') === 0);
  // Each subscriber's text at an offset equals the first one seen there; the resolved publish's text must be that one.
  const missing = records.reduce((total, record, t) => total + published.resolved[t].filter(([offset, text]) => record.textAt.get(offset) !== text).length, 0);
  check(
    'cluster',
    'resolved publishes not received as published / texts differing between subscribers',
    `${missing} of ${resolvedCount} / ${total('wrongText')}`,
    missing === 0 && total('wrongText') === 0 && resolvedCount > 0,
  );
  check('cluster', 'order per publisher: violations', `${total('orderViolations')} (retried publishes seen twice: ${total('repeats')} deliveries)`, total('orderViolations') === 0);
  check('cluster', 'subscribers dropped by a process that was not killed', `${total('unexpectedCloses')}`, total('unexpectedCloses') === 0);
  check('cluster', 'publish requests failed on a process that was not killed', published.errors.length === 0 ? '0' : `${published.errors.length} (first: ${published.errors[0]})`, published.errors.length === 0);
  const outageLines = outageApps.map((app, n) => app.logged('is unreachable') - outageLinesBefore[n]);
  check('cluster', 'Redis outage logged per process (once each)', outageLines.join(', '), outageLines.every((lines) => lines === 1));

  await Promise.all(subscribers.map((subscriber) => subscriber.close()));
  const others = everyApp.filter((app) => !app.killed);
  const died = others.filter((app) => app.diedOnItsOwn !== undefined).map((app) => app.diedOnItsOwn);
  check('cluster', 'processes that died other than the killed one', died.length === 0 ? '0' : died.join('; '), died.length === 0);
  const ends = await Promise.all(others.map((app) => app.stop()));
  check('cluster', `the ${others.length} other processes exited by themselves when stopped`, ends.join('; '), ends.every((end) => end === 'code 0, signal null'));
}
