/**
 * Echo benchmark: this library's default-session `/echo` route (the sample
 * app) against a plain `ws` echo server. Each server runs in its own child
 * process and the `ws` load client in another, so on 2 cores the server under
 * load and the client each have a core; this process only coordinates.
 * Servers alternate (ours, ws, ours, ws, ...) so machine noise hits both
 * alike. Exits non-zero only when something broke (echo mismatch,
 * connection error, crashed child), never because of a speed figure.
 *
 *   npm run bench                          # defaults: 3 rounds, 3 s windows after 1 s warm-up
 *   BENCH_SECONDS=1 BENCH_ROUNDS=1 npm run bench
 *   BENCH_SCENARIOS=small npm run bench    # one scenario only (small or large)
 *   BENCH_PROFILE=1 npm run bench          # also writes server CPU profiles to build/bench/profiles;
 *   node build/bench/profile-summary.js build/bench/profiles/ours-server.cpuprofile   # ... summarized
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import type { RunRequest, RunResult, ScenarioName, ServerKind, ServerMessage, WindowEdge } from './messages.js';
import { median } from './stats.js';

function envNumber(name: string, fallback: number, minimum: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < minimum) throw new Error(`${name} must be a number >= ${minimum}, got ${raw}`);
  return value;
}

const SECONDS = envNumber('BENCH_SECONDS', 3, 0.2);
const ROUNDS = Math.round(envNumber('BENCH_ROUNDS', 3, 1));
const WARMUP_SECONDS = envNumber('BENCH_WARMUP', Math.min(1, SECONDS / 2), 0);
/** Server children run with --cpu-prof: where their time goes, for chrome://inspect or a summary script. */
const PROFILE_DIR = process.env.BENCH_PROFILE ? fileURLToPath(new URL('./profiles/', import.meta.url)) : undefined;
/** Outside CPU use above this (cores) makes a run noisy enough to say so. */
const NOISY_OTHER_LOAD = 0.25;
/** A child that stops answering for this long has hung: the run fails instead of waiting forever. */
const RUN_TIMEOUT_MS = (WARMUP_SECONDS + SECONDS) * 1000 + 30_000;

interface Scenario {
  name: ScenarioName;
  label: string;
  connections: number;
  payloadBytes: number;
  binary: boolean;
}

const ALL_SCENARIOS: Scenario[] = [
  { name: 'small', label: 'small echo', connections: 50, payloadBytes: 32, binary: false },
  { name: 'large', label: '1 MiB echo', connections: 4, payloadBytes: 1024 * 1024, binary: true },
];
/** BENCH_SCENARIOS=small or =large runs one of them, e.g. to profile it alone. */
const SCENARIOS = ALL_SCENARIOS.filter(
  (scenario) => !process.env.BENCH_SCENARIOS || process.env.BENCH_SCENARIOS.split(',').includes(scenario.name),
);
const SERVERS: ServerKind[] = ['ours', 'ws'];

interface Measurement {
  msgsPerSecond: number;
  mbPerSecond: number;
  p50: number;
  p99: number;
  serverCpu: number;
  clientCpu: number;
  /** Cores' worth of CPU used by anything else on the machine during the window: the noise the run suffered. */
  otherLoad: number;
  /** Server CPU microseconds per echoed message: server cost even when the client is the bottleneck. */
  serverUsPerMsg: number;
}

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const children: ChildProcess[] = [];
let stopping = false;

/** Forks a child and fails the whole run if it dies before we asked it to stop. */
function forkChild(file: string, args: string[], name: string, execArgv: string[] = []): ChildProcess {
  const child = fork(here(file), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  children.push(child);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    console.error(`\nFAILED: ${name} (pid ${child.pid}) exited unexpectedly (code ${code}, signal ${signal})`);
    void shutdown(1);
  });
  return child;
}

function nextMessage<T>(child: ChildProcess, accept: (message: unknown) => message is T, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', listener);
      reject(new Error(`timed out waiting for ${what}`));
    }, RUN_TIMEOUT_MS);
    const listener = (message: unknown) => {
      if (!accept(message)) return;
      clearTimeout(timer);
      child.off('message', listener);
      resolve(message);
    };
    child.on('message', listener);
  });
}

const isType =
  <T extends { type: string }>(type: T['type']) =>
  (message: unknown): message is T =>
    typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;

interface ServerHandle {
  kind: ServerKind;
  child: ChildProcess;
  url: string;
}

async function startServer(kind: ServerKind): Promise<ServerHandle> {
  const profile = PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${kind}-server.cpuprofile`];
  const child = forkChild('./server-child.js', [kind], `${kind} server`, profile);
  const ready = await nextMessage(child, isType<Extract<ServerMessage, { type: 'ready' }>>('ready'), `${kind} server to listen`);
  return { kind, child, url: `ws://127.0.0.1:${ready.port}${ready.path}` };
}

async function serverCpu(server: ServerHandle): Promise<{ micros: number; wallNanos: bigint }> {
  const reply = nextMessage(server.child, isType<Extract<ServerMessage, { type: 'cpu' }>>('cpu'), 'server CPU sample');
  server.child.send({ type: 'cpu' });
  const { micros, wallNanos } = await reply;
  return { micros, wallNanos: BigInt(wallNanos) };
}

/** Busy and total CPU time of the whole machine (Linux /proc/stat, in ticks), or undefined elsewhere. */
function machineTimes(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    // idle and iowait are the two non-busy columns.
    return { busy: total - fields[3] - fields[4], total };
  } catch {
    return undefined;
  }
}

async function runOnce(
  client: ChildProcess,
  server: ServerHandle,
  scenario: Scenario,
): Promise<RunResult & { serverCpu: number; machineCores: number }> {
  const request: RunRequest = {
    type: 'run',
    url: server.url,
    scenario: scenario.name,
    connections: scenario.connections,
    payloadBytes: scenario.payloadBytes,
    binary: scenario.binary,
    warmupMs: Math.round(WARMUP_SECONDS * 1000),
    measureMs: Math.round(SECONDS * 1000),
  };
  // The server's CPU is sampled when the client opens and closes its measured window.
  let cpuStart: Promise<{ micros: number; wallNanos: bigint }> | undefined;
  let cpuEnd: Promise<{ micros: number; wallNanos: bigint }> | undefined;
  let machineStart: ReturnType<typeof machineTimes>;
  let machineEnd: ReturnType<typeof machineTimes>;
  const onEdge = (message: unknown) => {
    if (!isType<WindowEdge>('window')(message)) return;
    if (message.edge === 'start') {
      machineStart = machineTimes();
      cpuStart = serverCpu(server);
    } else {
      machineEnd = machineTimes();
      cpuEnd = serverCpu(server);
    }
  };
  client.on('message', onEdge);
  const result = nextMessage(client, isType<RunResult>('result'), `the ${scenario.name} run against ${server.kind}`);
  client.send(request);
  try {
    const outcome = await result;
    let cpu = NaN;
    if (cpuStart !== undefined && cpuEnd !== undefined) {
      const [start, end] = await Promise.all([cpuStart, cpuEnd]);
      cpu = (end.micros - start.micros) / (Number(end.wallNanos - start.wallNanos) / 1e3);
    }
    const machineCores =
      machineStart !== undefined && machineEnd !== undefined && machineEnd.total > machineStart.total
        ? ((machineEnd.busy - machineStart.busy) / (machineEnd.total - machineStart.total)) * os.cpus().length
        : NaN;
    return { ...outcome, serverCpu: cpu, machineCores };
  } finally {
    client.off('message', onEdge);
  }
}

const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
const pct = (value: number) => (Number.isFinite(value) ? `${Math.round(value * 100)}%` : 'n/a');
const pad = (text: string, width: number) => text.padEnd(width);

async function shutdown(code: number): Promise<never> {
  stopping = true;
  for (const child of children) {
    if (child.connected) child.send({ type: 'stop' });
  }
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          // Our own children, by handle: a child that ignores stop is killed after a grace period.
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );
  process.exit(code);
}

/** The compact final table: medians per server, the ratio, and how many runs each median is of when not all. */
function printTable(results: Map<string, Measurement[]>, include: (m: Measurement) => boolean): void {
  const runs = (scenario: ScenarioName, kind: ServerKind) => (results.get(`${scenario}/${kind}`) ?? []).filter(include);
  const med = (scenario: ScenarioName, kind: ServerKind, pick: (m: Measurement) => number) =>
    median(runs(scenario, kind).map(pick).filter(Number.isFinite));
  const row = (label: string, unit: string, scenario: ScenarioName, pick: (m: Measurement) => number, digits: number, inverse = false) => {
    if (!SCENARIOS.some((run) => run.name === scenario)) return;
    const ours = med(scenario, 'ours', pick);
    const ws = med(scenario, 'ws', pick);
    const ratio = inverse ? ws / ours : ours / ws;
    const counts = SERVERS.map((kind) => runs(scenario, kind).length);
    const n = counts.every((count) => count === ROUNDS) ? '' : `  (n = ${counts.join('/')})`;
    console.log(
      `${pad(label, 11)} ${pad(unit, 7)}  ours ${pad(fmt(ours, digits), 7)}  ws ${pad(fmt(ws, digits), 7)}  ratio ${fmt(ratio, 2)}` +
        `${inverse ? ' (ws/ours)' : ''}${n}`,
    );
  };
  row('small echo', 'msgs/s', 'small', (m) => m.msgsPerSecond, 0);
  row('small echo', 'p99 ms', 'small', (m) => m.p99, 2, true);
  row('1 MiB echo', 'MB/s', 'large', (m) => m.mbPerSecond, 0);
  row('small echo', 'µs/msg', 'small', (m) => m.serverUsPerMsg, 1, true);
  row('1 MiB echo', 'µs/msg', 'large', (m) => m.serverUsPerMsg, 0, true);
  const cpuNote = (scenario: ScenarioName) =>
    SERVERS.map((kind) => `${kind} ${pct(med(scenario, kind, (m) => m.serverCpu))}/${pct(med(scenario, kind, (m) => m.clientCpu))}`).join(', ');
  console.log(`(median cpu server/client: ${SCENARIOS.map((scenario) => `${scenario.name} ${cpuNote(scenario.name)}`).join('; ')})`);
}

async function main(): Promise<void> {
  console.log('nest-websocket-routes echo benchmark');
  console.log(
    `node ${process.version}, ${os.cpus().length} cores; ${ROUNDS} rounds, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s measured per run`,
  );
  console.log(
    'layout: each server in its own forked child process, the ws load client in another; only the server under load is busy,\n' +
      '        so on 2 cores server and client get one core each. Servers alternate ours, ws, ours, ws, ... per scenario.',
  );
  console.log('ours = sample AppModule /echo (default session: for await (frame of incoming) send(frame)); ws = ws WebSocketServer echo');
  console.log('small: 50 connections x 32-byte text, closed loop, 1 in flight per connection; latency = send to echo, per message');
  console.log('large: 4 connections x 1 MiB binary, closed loop, 1 in flight per connection; MB/s = echoed payload, 1 MB = 10^6 bytes');
  console.log(
    'cpu: share of one core used during the measured window by the server, the client, and everything else on the machine\n' +
      '     ("other": noise from outside the benchmark; runs where it is high are less trustworthy)\n',
  );
  if (PROFILE_DIR !== undefined) console.log(`profiling servers (--cpu-prof): profiles go to ${PROFILE_DIR}\n`);

  const servers = new Map<ServerKind, ServerHandle>();
  for (const kind of SERVERS) servers.set(kind, await startServer(kind));
  const client = forkChild('./load-client.js', [], 'load client');

  const results = new Map<string, Measurement[]>();
  const errors: string[] = [];
  for (const scenario of SCENARIOS) {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of SERVERS) {
        const outcome = await runOnce(client, servers.get(kind)!, scenario);
        const seconds = outcome.seconds || NaN;
        const measurement: Measurement = {
          msgsPerSecond: outcome.messages / seconds,
          mbPerSecond: outcome.bytes / 1e6 / seconds,
          p50: outcome.latency.p50 ?? NaN,
          p99: outcome.latency.p99 ?? NaN,
          serverCpu: outcome.serverCpu,
          clientCpu: outcome.clientCpu,
          otherLoad: Math.max(0, outcome.machineCores - outcome.serverCpu - outcome.clientCpu),
          serverUsPerMsg: (outcome.serverCpu * seconds * 1e6) / outcome.messages,
        };
        const key = `${scenario.name}/${kind}`;
        results.set(key, [...(results.get(key) ?? []), measurement]);
        const figures =
          scenario.name === 'small'
            ? `${pad(fmt(measurement.msgsPerSecond, 0), 7)} msgs/s  p50 ${fmt(measurement.p50, 2)} ms  p99 ${fmt(measurement.p99, 2)} ms  p99.9 ${fmt(outcome.latency.p999 ?? NaN, 2)} ms`
            : `${pad(fmt(measurement.mbPerSecond, 0), 5)} MB/s  (${outcome.messages} msgs)  p50 ${fmt(measurement.p50, 1)} ms  p99 ${fmt(measurement.p99, 1)} ms`;
        console.log(
          `${pad(scenario.label, 11)} round ${round}  ${pad(kind, 4)}  ${figures}  | cpu server ${pct(measurement.serverCpu)} client ${pct(measurement.clientCpu)} other ${pct(measurement.otherLoad)}` +
            ` | server ${fmt(measurement.serverUsPerMsg, scenario.name === 'small' ? 1 : 0)} µs cpu/msg`,
        );
        for (const error of outcome.errors) errors.push(`${scenario.label}, round ${round}, ${kind}: ${error}`);
      }
    }
  }

  const isQuiet = (m: Measurement) => !(m.otherLoad > NOISY_OTHER_LOAD);
  const all = [...results.values()].flat();
  const noisy = all.filter((m) => !isQuiet(m)).length;

  console.log(`\nmedians of ${ROUNDS} rounds; every ratio is "higher is better for ours": ours/ws for rates, ws/ours for latency and cost`);
  console.log('(µs/msg = server process CPU per echoed message, a cost that does not depend on whether the client saturates)');
  printTable(results, () => true);
  if (noisy > 0) {
    console.log(
      `warning: ${noisy} of ${all.length} runs had other load above ${pct(NOISY_OTHER_LOAD)} of a core (something else was running); ` +
        'rerun on a quiet machine for figures to rely on',
    );
    if (noisy < all.length) {
      console.log('the same medians over the quiet runs only (n = runs used, ours/ws):');
      printTable(results, isQuiet);
    }
  }

  if (errors.length > 0) {
    console.error(`\nFAILED: ${errors.length} error(s):`);
    for (const error of errors.slice(0, 50)) console.error(`  ${error}`);
    await shutdown(1);
  }
  await shutdown(0);
}

main().catch(async (error: unknown) => {
  console.error('\nFAILED:', error instanceof Error ? (error.stack ?? error.message) : error);
  await shutdown(1);
});
