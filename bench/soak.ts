/**
 * Load and soak run (`npm run soak`): loopback only, bounded in time, stops by
 * itself, exits non-zero when any check fails. Each scenario gets a fresh
 * server child (soak-server.ts: a Nest app on express, maxConnections 20 000)
 * that reports its own RSS, active handles and counters over IPC; this
 * process is the client side (the `ws` package for good clients, node:net for
 * hostile ones, soak-hostile.ts).
 *
 *   1. idle:  10 000 concurrent idle sessions (200 handshakes in flight), then
 *             app.close(): every client sees 1001, every handler's finally ran,
 *             the server process exits by itself.
 *   2. churn: 50 000 connect/echo/close cycles (100 in parallel): RSS, active
 *             handles and the WebSocketSessions registry back where they were.
 *   3. mixed: 500 sessions echoing numbered messages while 50 hostile clients
 *             send garbage for 20 s: nothing lost, nothing reordered.
 *   4. stalled: 200 each of an upgrade request never finished, a session gone
 *             quiet (idleTimeout) and a peer that stops answering pings: each cut.
 *   5. cluster: 3 processes of the cluster test's app on an append-only
 *             redis-server of its own (soak-cluster.ts), 300 subscribers on 4
 *             history topics, publishers on each process for 20 s; one process
 *             killed with SIGKILL (its subscribers reconnect elsewhere with their
 *             position), later redis-server too: nothing missed, nothing twice.
 *
 *   SOAK_IDLE=10000 SOAK_CHURN=50000 SOAK_MIXED_SECONDS=20 npm run soak   # the defaults
 *   SOAK_SCENARIOS=churn npm run soak                                   # one scenario (idle, churn, mixed, stalled)
 *   SOAK_SCENARIOS=mixed SOAK_HOSTILE_KINDS=never-reads npm run soak    # some hostile kinds only
 *   SOAK_SCENARIOS=cluster npm run soak                                 # the cluster scenario alone (needs redis-server on PATH)
 *   SOAK_CLUSTER_SECONDS=20 SOAK_CLUSTER_SUBSCRIBERS=300 SOAK_CLUSTER_TOPICS=4 npm run soak   # its defaults
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { clusterScenario } from './soak-cluster.js';
import { HOSTILE_INPUTS, runHostile, STALL_HEADERS_TIMEOUT_MS, STALLED_PEERS } from './soak-hostile.js';
import type { SoakStats } from './soak-server.js';

const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 1) throw new Error(`${name} must be a number >= 1, got ${raw}`);
  return Math.round(value);
};
const IDLE_SESSIONS = num('SOAK_IDLE', 10_000);
const IDLE_IN_FLIGHT = 200;
const CHURN_CYCLES = num('SOAK_CHURN', 50_000);
const CHURN_PARALLEL = 100;
const MIXED_GOOD = num('SOAK_MIXED_GOOD', 500);
const MIXED_HOSTILE = num('SOAK_MIXED_HOSTILE', 50);
const MIXED_SECONDS = num('SOAK_MIXED_SECONDS', 20);
const STALLED = num('SOAK_STALLED', 200);
/** RSS may grow this much over a churn run (allocator and heap slack), beyond which it counts as a leak. */
const CHURN_RSS_SLACK = 24 * 1024 * 1024;
/** Handle types that must come back exactly (sockets, servers, timers). */
const EXACT_HANDLES = ['TCPSocketWrap', 'TCPServerWrap', 'TCPWrap', 'Timeout', 'Immediate'];
const SCENARIO_NAMES = ['idle', 'churn', 'mixed', 'stalled', 'cluster'];
const SCENARIOS = (process.env.SOAK_SCENARIOS ?? SCENARIO_NAMES.join(',')).split(',');
/** Whole-run guard: the soak must stop by itself even if something hangs. */
const RUN_LIMIT_MS = 5 * 60_000;

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Check {
  scenario: string;
  what: string;
  value: string;
  ok: boolean;
}
const checks: Check[] = [];
const figures: Array<[string, string, string]> = [];
function check(scenario: string, what: string, value: string, ok: boolean): void {
  checks.push({ scenario, what, value, ok });
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${value}`);
}
function figure(scenario: string, what: string, value: string): void {
  figures.push([scenario, what, value]);
  console.log(`       ${what}: ${value}`);
}

// ---------------------------------------------------------------- server child

class Server {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  expectExit = false;
  port = 0;
  private constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(({ code, signal }) => {
      if (!this.expectExit) {
        console.error(`\nFAILED: server child ${child.pid} died unexpectedly (code ${code}, signal ${signal})`);
        finish(1);
      }
    });
  }

  static async start(): Promise<Server> {
    const child = fork(here('./soak-server.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
    children.add(child);
    const server = new Server(child);
    const ready = await server.next<{ port: number }>('ready', 30_000);
    server.port = ready.port;
    return server;
  }

  url(path: string): string {
    return `ws://127.0.0.1:${this.port}/${path}`;
  }

  next<T>(type: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.child.off('message', listener);
        reject(new Error(`timed out waiting for the server's ${type}`));
      }, timeoutMs);
      const listener = (message: { type?: string; message?: string }) => {
        if (message.type === 'error') {
          clearTimeout(timer);
          this.child.off('message', listener);
          reject(new Error(message.message));
        } else if (message.type === type) {
          clearTimeout(timer);
          this.child.off('message', listener);
          resolve(message as T);
        }
      };
      this.child.on('message', listener);
    });
  }

  stats(): Promise<SoakStats> {
    const reply = this.next<SoakStats>('stats', 30_000);
    this.child.send({ type: 'stats' });
    return reply;
  }

  /** app.close() in the server; resolves with its last figures, then with how the process ended (or a timeout). */
  async close(): Promise<{ closed: SoakStats & { closeMs: number }; exit: string; exitMs: number; exitedByItself: boolean }> {
    this.expectExit = true;
    const started = Date.now();
    const reply = this.next<SoakStats & { closeMs: number }>('closed', 30_000);
    this.child.send({ type: 'close' });
    const closed = await reply;
    const timeout = sleep(15_000).then(() => undefined);
    const ended = await Promise.race([this.exited, timeout]);
    if (ended === undefined) {
      this.child.kill('SIGKILL');
      return { closed, exit: 'still running 15 s after app.close() (killed)', exitMs: Date.now() - started, exitedByItself: false };
    }
    return { closed, exit: `code ${ended.code}, signal ${ended.signal}`, exitMs: Date.now() - started, exitedByItself: ended.code === 0 };
  }
}

const children = new Set<ChildProcess>();
function finish(code: number): never {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  process.exit(code);
}

// ---------------------------------------------------------------- helpers

/** Runs `task(i)` for i in [0, total) with at most `parallel` at once. */
async function pool(total: number, parallel: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, total) }, async () => {
      while (next < total) await task(next++);
    }),
  );
}

/** Opens a `ws` client; resolves on open, rejects on error or a refused handshake. */
function open(url: string, localAddress?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress } as WebSocket.ClientOptions);
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_request, response) => reject(new Error(`handshake refused: HTTP ${response.statusCode}`)));
  });
}

function handleDiff(before: Record<string, number>, after: Record<string, number>): string[] {
  const types = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...types].filter((type) => (before[type] ?? 0) !== (after[type] ?? 0)).map((type) => `${type} ${before[type] ?? 0}→${after[type] ?? 0}`);
}
const warningCount = (logs: SoakStats['logs']) => Object.values(logs.warnings).reduce((sum, count) => sum + count, 0);
const logList = (logs: SoakStats['logs']) =>
  `${warningCount(logs)} warnings, ${logs.errors} errors${Object.keys(logs.warnings).length ? ` (${Object.entries(logs.warnings).map(([kind, count]) => `${kind} ×${count}`).join('; ')})` : ''}`;
const handleList = (handles: Record<string, number>) =>
  Object.entries(handles)
    .sort()
    .map(([type, count]) => `${type}×${count}`)
    .join(' ');

// ---------------------------------------------------------------- 1. idle

async function idleScenario(): Promise<void> {
  console.log(`\n1. idle: ${IDLE_SESSIONS} concurrent idle sessions, then app.close()`);
  const server = await Server.start();
  // Warm-up: a few sessions opened and closed, so lazily loaded code is in before the baseline.
  await pool(200, 50, async () => {
    const ws = await open(server.url('idle'));
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close(1000);
    });
  });
  const before = await server.stats();
  const clients: WebSocket[] = [];
  const closeCodes = new Map<number, number>();
  let closedClients = 0;
  let allClosed!: () => void;
  const everyoneClosed = new Promise<void>((resolve) => (allClosed = resolve));
  let failures = 0;
  let firstFailure = '';
  const started = performance.now();
  await pool(IDLE_SESSIONS, IDLE_IN_FLIGHT, async () => {
    try {
      const ws = await open(server.url('idle'));
      ws.on('error', () => undefined);
      ws.once('close', (code) => {
        closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
        if (++closedClients === IDLE_SESSIONS) allClosed();
      });
      clients.push(ws);
    } catch (error) {
      failures++;
      firstFailure ||= String(error);
    }
  });
  const openSeconds = (performance.now() - started) / 1000;
  await sleep(500);
  const held = await server.stats();
  check('idle', 'sessions held (server registry)', `${held.sessions} of ${IDLE_SESSIONS}`, held.sessions === IDLE_SESSIONS && failures === 0);
  if (failures > 0) check('idle', 'handshakes failed', `${failures} (first: ${firstFailure})`, false);
  figure('idle', 'handshake rate', `${Math.round(IDLE_SESSIONS / openSeconds)} /s (${IDLE_SESSIONS} in ${openSeconds.toFixed(1)} s, ${IDLE_IN_FLIGHT} in flight)`);
  figure('idle', 'server RSS', `${mb(before.rss)} before → ${mb(held.rss)} with ${held.sessions} sessions`);
  figure('idle', 'server RSS per idle session', `${((held.rss - before.rss) / IDLE_SESSIONS / 1024).toFixed(1)} KiB (heap ${((held.heapUsed - before.heapUsed) / IDLE_SESSIONS / 1024).toFixed(1)} KiB)`);

  const { closed, exit, exitMs, exitedByItself } = await server.close();
  await Promise.race([everyoneClosed, sleep(15_000)]);
  const codes = [...closeCodes].map(([code, count]) => `${code}×${count}`).join(' ') || 'none';
  check('idle', 'clients that saw Close 1001', `${closeCodes.get(1001) ?? 0} of ${clients.length} (codes: ${codes})`, (closeCodes.get(1001) ?? 0) === clients.length && clients.length === IDLE_SESSIONS);
  const handlers = { started: closed.counters.started.idle, finished: closed.counters.finished.idle };
  check('idle', 'handlers whose finally ran (server count)', `${handlers.finished} of ${handlers.started} (${IDLE_SESSIONS} and 200 warm-up sessions)`, handlers.finished === handlers.started && handlers.started === IDLE_SESSIONS + 200);
  figure('idle', 'app.close() took', `${closed.closeMs} ms; handles left after it: ${handleList(closed.handles) || 'none'}`);
  check('idle', 'server log lines (good traffic logs nothing)', logList(closed.logs), warningCount(closed.logs) === 0 && closed.logs.errors === 0);
  check('idle', 'server process exited by itself', `${exit} after ${exitMs} ms`, exitedByItself);
}

// ---------------------------------------------------------------- 2. churn

async function churnScenario(): Promise<void> {
  console.log(`\n2. churn: ${CHURN_CYCLES} connect/echo/close cycles, ${CHURN_PARALLEL} in parallel`);
  const server = await Server.start();
  const sources = ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4'];
  let failures = 0;
  let mismatches = 0;
  let firstFailure = '';
  const closeCodes = new Map<number, number>();
  const cycle = async (i: number) => {
    try {
      const ws = await open(server.url('echo'), sources[i % sources.length]);
      const payload = `cycle ${i} ${'x'.repeat(i % 200)}`;
      await new Promise<void>((resolve, reject) => {
        ws.once('error', reject);
        ws.once('message', (data, isBinary) => {
          if (isBinary || data.toString() !== payload) mismatches++;
          ws.close(1000);
        });
        ws.once('close', (code) => {
          closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
          resolve();
        });
        ws.send(payload);
      });
    } catch (error) {
      failures++;
      firstFailure ||= String(error);
    }
  };
  await pool(2_000, CHURN_PARALLEL, cycle);
  const before = await server.stats();
  const started = performance.now();
  await pool(CHURN_CYCLES, CHURN_PARALLEL, cycle);
  const seconds = (performance.now() - started) / 1000;
  // Closes the server answered last may still be in closeTimeout/TCP teardown: give them a moment, then compare.
  let after = await server.stats();
  for (let i = 0; i < 20 && (after.sessions !== 0 || handleDiff(before.handles, after.handles).length > 0); i++) {
    await sleep(500);
    after = await server.stats();
  }
  figure('churn', 'cycles', `${CHURN_CYCLES} in ${seconds.toFixed(1)} s (${Math.round(CHURN_CYCLES / seconds)} /s), close codes incl. 2000 warm-up ${[...closeCodes].map(([c, n]) => `${c}×${n}`).join(' ')}`);
  check('churn', 'failed cycles / wrong echoes', `${failures} / ${mismatches}${firstFailure ? ` (first: ${firstFailure})` : ''}`, failures === 0 && mismatches === 0);
  check('churn', 'WebSocketSessions registry after', `${after.sessions} open`, after.sessions === 0);
  const rssGrowth = after.rss - before.rss;
  check('churn', 'server RSS after warm-up → after churn', `${mb(before.rss)} → ${mb(after.rss)} (${rssGrowth >= 0 ? '+' : ''}${mb(rssGrowth)}, slack ${mb(CHURN_RSS_SLACK)}); heap ${mb(before.heapUsed)} → ${mb(after.heapUsed)}`, rssGrowth <= CHURN_RSS_SLACK);
  const diff = handleDiff(before.handles, after.handles);
  const exactDiff = diff.filter((entry) => EXACT_HANDLES.includes(entry.split(' ')[0]));
  check('churn', 'active handles before → after', `${handleList(before.handles)}${diff.length ? ` | changed: ${diff.join(', ')}` : ' | unchanged'}`, exactDiff.length === 0);
  check('churn', 'server log lines (good traffic logs nothing)', logList(after.logs), warningCount(after.logs) === 0 && after.logs.errors === 0);
  const handlers = { started: after.counters.started.echo, finished: after.counters.finished.echo };
  check('churn', 'handlers started = finally ran', `${handlers.started} = ${handlers.finished} (incl. warm-up)`, handlers.started === handlers.finished);
  const { exit, exitedByItself } = await server.close();
  check('churn', 'server process exited by itself after app.close()', exit, exitedByItself);
}

// ---------------------------------------------------------------- 3. mixed

interface GoodStats {
  sent: number;
  echoed: number;
  lost: number;
  reordered: number;
  corrupted: number;
  closedEarly: number;
}

/** A well-behaved session: numbered messages, a few in flight, each echo checked for number and content. */
async function goodSession(url: string, id: number, stop: () => boolean, totals: GoodStats): Promise<void> {
  const ws = await open(url);
  const window = 4;
  const inFlight: string[] = [];
  let seq = 0;
  let expected = 0;
  let closed = false;
  const body = (n: number) => `${id}:${n}:${'.'.repeat((n * 37) % 300)}`;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (!stop() && inFlight.length < window && !closed) {
        const text = body(seq++);
        inFlight.push(text);
        ws.send(text);
        totals.sent++;
      }
      if (stop() && inFlight.length === 0 && !closed) ws.close(1000);
    };
    ws.on('message', (data) => {
      const text = data.toString();
      const n = Number(text.split(':', 2)[1]);
      if (n === expected) {
        expected++;
        totals.echoed++;
        if (text !== inFlight.shift()) totals.corrupted++;
      } else if (n > expected) {
        totals.lost += n - expected;
        inFlight.splice(0, n - expected + 1);
        expected = n + 1;
        totals.echoed++;
      } else {
        totals.reordered++;
      }
      pump();
    });
    ws.on('error', () => undefined);
    ws.once('close', (code) => {
      closed = true;
      if (code !== 1000 || inFlight.length > 0) {
        totals.closedEarly++;
        totals.lost += inFlight.length;
      }
      resolve();
    });
    pump();
  });
}

async function mixedScenario(): Promise<void> {
  console.log(`\n3. mixed: ${MIXED_GOOD} echoing sessions while ${MIXED_HOSTILE} hostile clients send garbage for ${MIXED_SECONDS} s`);
  const server = await Server.start();
  // This process's own delay, to tell the server's latency from the load generator's.
  const clientDelay = monitorEventLoopDelay({ resolution: 10 });
  clientDelay.enable();
  const totals: GoodStats = { sent: 0, echoed: 0, lost: 0, reordered: 0, corrupted: 0, closedEarly: 0 };
  let stopGood = false;
  const good: Promise<void>[] = [];
  let goodFailures = 0;
  await pool(MIXED_GOOD, 100, async (i) => {
    good.push(
      goodSession(server.url('echo'), i, () => stopGood, totals).catch(() => {
        goodFailures++;
      }),
    );
    await sleep(0);
  });
  const kinds = process.env.SOAK_HOSTILE_KINDS?.split(',') ?? Object.keys(HOSTILE_INPUTS);
  const outcomes = new Map<string, Map<string, number>>();
  /** The longest a hostile client waited for its answer, by kind. */
  const slowest = new Map<string, number>();
  let hostileOpened = 0;
  const deadline = Date.now() + MIXED_SECONDS * 1000;
  await Promise.all(
    Array.from({ length: MIXED_HOSTILE }, async (_, worker) => {
      for (let i = worker; Date.now() < deadline; i += MIXED_HOSTILE) {
        const kind = kinds[i % kinds.length];
        hostileOpened++;
        const { outcome, ms } = await runHostile(server.port, HOSTILE_INPUTS[kind]);
        if (outcome !== 'no reaction') slowest.set(kind, Math.max(slowest.get(kind) ?? 0, ms));
        const byKind = outcomes.get(kind) ?? new Map<string, number>();
        byKind.set(outcome, (byKind.get(outcome) ?? 0) + 1);
        outcomes.set(kind, byKind);
      }
    }),
  );
  stopGood = true;
  await Promise.race([Promise.all(good), sleep(20_000)]);
  const after = await server.stats();
  const delay = after.loopDelay;
  clientDelay.disable();
  const ms = (nanoseconds: number) => `${(nanoseconds / 1e6).toFixed(1)} ms`;
  figure('mixed', 'server event-loop delay', `p50 ${delay.p50.toFixed(1)} ms, p99 ${delay.p99.toFixed(1)} ms, max ${delay.max.toFixed(1)} ms`);
  figure('mixed', 'load generator event-loop delay', `p50 ${ms(clientDelay.percentile(50))}, p99 ${ms(clientDelay.percentile(99))}, max ${ms(clientDelay.max)}`);
  figure('mixed', 'server RSS at the end', `${mb(after.rss)} (heap ${mb(after.heapUsed)})`);
  check('mixed', 'good sessions that could not open', `${goodFailures} of ${MIXED_GOOD}`, goodFailures === 0);
  figure('mixed', 'messages echoed (good sessions)', `${totals.echoed} of ${totals.sent} sent`);
  check('mixed', 'lost / reordered / corrupted messages', `${totals.lost} / ${totals.reordered} / ${totals.corrupted}`, totals.lost === 0 && totals.reordered === 0 && totals.corrupted === 0 && totals.echoed === totals.sent);
  check('mixed', 'good sessions closed other than by their own 1000', `${totals.closedEarly}`, totals.closedEarly === 0);
  figure('mixed', 'hostile connections opened', `${hostileOpened} (${kinds.length} kinds, ${MIXED_HOSTILE} at once)`);
  for (const kind of kinds) {
    const byKind = outcomes.get(kind) ?? new Map<string, number>();
    const wait = slowest.has(kind) ? `; answered within ${Math.ceil(slowest.get(kind)!)} ms` : '';
    const text = `${[...byKind].map(([outcome, count]) => `${outcome}×${count}`).join(', ')}${wait}`;
    const unexpected = [...byKind.keys()].filter((outcome) => !HOSTILE_INPUTS[kind].answers.includes(outcome));
    check('mixed', `hostile ${kind}`, `${text}${unexpected.length ? ` (expected ${HOSTILE_INPUTS[kind].answers.join(' | ')})` : ''}`, unexpected.length === 0);
  }
  check(
    'mixed',
    'server log lines (at most one warning per hostile connection, no errors)',
    logList(after.logs),
    warningCount(after.logs) <= hostileOpened && after.logs.errors === 0,
  );
  check('mixed', 'WebSocketSessions registry after', `${after.sessions} open`, after.sessions === 0);
  const { exit, exitedByItself } = await server.close();
  check('mixed', 'server survived and exited by itself after app.close()', exit, exitedByItself);
}

// ---------------------------------------------------------------- 4. stalled

async function stalledScenario(): Promise<void> {
  const kinds = Object.keys(STALLED_PEERS);
  console.log(`\n4. stalled: ${STALLED} peers of each kind (${kinds.join(', ')}) at once`);
  const server = await Server.start();
  const before = await server.stats();
  const results = await Promise.all(
    kinds.map(async (kind) => {
      const runs = await Promise.all(Array.from({ length: STALLED }, () => runHostile(server.port, STALLED_PEERS[kind])));
      return { kind, runs };
    }),
  );
  for (const { kind, runs } of results) {
    const byOutcome = new Map<string, number>();
    for (const { outcome } of runs) byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
    const slowest = Math.ceil(Math.max(...runs.map((run) => run.ms)));
    const fastest = Math.floor(Math.min(...runs.map((run) => run.ms)));
    const unexpected = [...byOutcome.keys()].filter((outcome) => !STALLED_PEERS[kind].answers.includes(outcome));
    const text = `${[...byOutcome].map(([outcome, count]) => `${outcome}×${count}`).join(', ')}; cut after ${fastest}-${slowest} ms`;
    check('stalled', kind, `${text}${unexpected.length ? ` (expected ${STALLED_PEERS[kind].answers.join(' | ')})` : ''}`, unexpected.length === 0);
  }
  let after = await server.stats();
  for (let i = 0; i < 20 && after.sessions !== 0; i++) {
    await sleep(500);
    after = await server.stats();
  }
  const { started, finished } = after.counters;
  check('stalled', 'sessions left / handlers whose finally ran', `${after.sessions} / quiet ${finished.quiet} of ${started.quiet}, pinged ${finished.pinged} of ${started.pinged}`, after.sessions === 0 && finished.quiet === started.quiet && finished.pinged === started.pinged && started.quiet === STALLED && started.pinged === STALLED);
  figure('stalled', 'server RSS', `${mb(before.rss)} before, ${mb(after.rss)} after`);
  figure('stalled', 'headersTimeout', `${STALL_HEADERS_TIMEOUT_MS} ms, set by the app; Node checks it every 30 s`);
  check('stalled', 'server log lines (at most one warning per cut session, no errors)', logList(after.logs), warningCount(after.logs) <= 2 * STALLED && after.logs.errors === 0);
  const { exit, exitedByItself } = await server.close();
  check('stalled', 'server process exited by itself after app.close()', exit, exitedByItself);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const guard = setTimeout(() => {
    console.error(`\nFAILED: the soak ran past ${RUN_LIMIT_MS / 1000} s`);
    finish(1);
  }, RUN_LIMIT_MS);
  guard.unref();
  const started = Date.now();
  console.log(`soak: node ${process.version}, ${os.cpus().length} cores, ${os.platform()} ${os.release()}, ${new Date().toISOString()}`);
  if (SCENARIOS.includes('idle')) await idleScenario();
  if (SCENARIOS.includes('churn')) await churnScenario();
  if (SCENARIOS.includes('mixed')) await mixedScenario();
  if (SCENARIOS.includes('stalled')) await stalledScenario();
  if (SCENARIOS.includes('cluster')) await clusterScenario(check, figure);
  const failed = checks.filter((entry) => !entry.ok);
  console.log(`\nSummary (${((Date.now() - started) / 1000).toFixed(0)} s)`);
  const rows: Array<[string, string, string, string]> = [
    ...figures.map(([scenario, what, value]): [string, string, string, string] => [scenario, '', what, value]),
    ...checks.map((entry): [string, string, string, string] => [entry.scenario, entry.ok ? 'ok' : 'FAIL', entry.what, entry.value]),
  ].sort((a, b) => SCENARIO_NAMES.indexOf(a[0]) - SCENARIO_NAMES.indexOf(b[0]));
  const width = Math.max(...rows.map((row) => row[2].length));
  for (const [scenario, status, what, value] of rows) console.log(`${scenario.padEnd(7)} ${status.padEnd(4)} ${what.padEnd(width)}  ${value}`);
  console.log(failed.length === 0 ? `\nall ${checks.length} checks passed` : `\n${failed.length} of ${checks.length} checks FAILED`);
  finish(failed.length === 0 ? 0 : 1);
}

main().catch((error: unknown) => {
  console.error('\nFAILED:', error);
  finish(1);
});
