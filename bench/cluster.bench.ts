/**
 * Cluster benchmark (issue 13): our Redis broker against socket.io 4 with `@socket.io/redis-adapter`, side by
 * side on one redis-server, and our in-process `publish` against a loop over `ws`'s `wss.clients`.
 *
 *   cluster     3 server processes per side on one redis-server that this benchmark starts on a loopback port
 *               (Debian's redis-server on PATH) and removes at the end. ours: servers/cluster-ours.ts, a Nest app
 *               with RedisBroker and a route that subscribes each subscriber to its topic and publishes what a
 *               client sends (except the sender). socket.io: servers/cluster-socketio.ts, rooms for topics,
 *               socket.to(room).emit, the adapter's createAdapter on node-redis clients. Keys and channels apart
 *               (ours under `bench:`, socket.io's under `socket.io#`), so the sides do not hear each other.
 *               Subscribers spread evenly over the 3 processes, publishers on each process (cluster-client.ts).
 *   in-process  one server process, one topic, BENCH_INPROCESS_SUBSCRIBERS subscribers, one publisher: ours with
 *               the default in-process broker against servers/cluster-ws.ts (for of wss.clients: client.send).
 *               ws loads bufferutil when it is installed (an optional dependency of ours), as ws recommends.
 *
 * Both are closed loops: each publisher keeps BENCH_CLUSTER_IN_FLIGHT messages out and sends the next as soon as
 * one reached every subscriber of its topic. The default (16) keeps the machine's 2 cores busy, so deliveries/s
 * is what the servers, Redis and the client can do together here (a capacity), and latency includes the queueing
 * that load brings; with 4, the loop waits on latency more than on CPU and the figures move with machine noise. Latency is publish to receive (a timestamp in the payload; publishers and subscribers share one
 * client process, so one clock). Every delivery is checked: delivered/expected must be 100% and order
 * violations per publisher 0, or the run fails. The client (cluster-client.ts) runs in a process of its own;
 * each server in its own (server-child.ts), started once per scenario; this process only coordinates. Sides take
 * turns, each round starting with the other one, and the table shows medians of the rounds.
 *
 * Exits non-zero only when something broke (a lost, duplicated or misordered delivery, a connection error,
 * a crashed child), never because of a speed figure.
 *
 *   npm run bench:cluster                            # defaults: 3 rounds of 1 s warm-up + 3 s measured per side and scenario, about a minute
 *   BENCH_SECONDS=5 BENCH_ROUNDS=5 npm run bench:cluster
 *   BENCH_WARMUP=2 npm run bench:cluster             # warm-up seconds per run (default: min(1, BENCH_SECONDS / 2))
 *   BENCH_CLUSTER_SCENARIOS=cluster npm run bench:cluster   # cluster, in-process, or both (the default)
 *   BENCH_CLUSTER_TOPICS=9                           # topics (default 9)
 *   BENCH_CLUSTER_SUBSCRIBERS=30                     # subscribers per topic (default 30)
 *   BENCH_CLUSTER_PUBLISHERS=3                       # publishers per process (default 3); publisher n publishes to topic n mod topics,
 *                                                    # so with more topics than publishers some topics have no traffic
 *   BENCH_CLUSTER_PAYLOAD=100                        # message size in bytes (default 100)
 *   BENCH_CLUSTER_IN_FLIGHT=4                        # messages out per publisher (default 16)
 *   BENCH_INPROCESS_SUBSCRIBERS=500                  # subscribers of the in-process scenario's topic (default 500)
 *   BENCH_PROFILE=1 npm run bench:cluster            # servers' CPU profiles to build/bench/profiles (cluster-ours-cluster-server-1.cpuprofile, ...),
 *   node build/bench/profile-summary.js build/bench/profiles/cluster-ours-cluster-server-1.cpuprofile   # ... summarized
 */
import os from 'node:os';
import { RedisServer } from '../test/support/redis-server.js';
import { Child, EchoServer, nodeVersions, runBench } from './children.js';
import type { FanoutProtocol, FanoutRequest, FanoutResult } from './cluster-messages.js';
import type { ClusterServerKind, WindowEdge } from './messages.js';
import { fmt, pct, printColumns } from './report.js';
import { machineTimes } from './run-scenario.js';
import { envNumber, PROFILE_DIR, ROUNDS, SECONDS, WARMUP_SECONDS } from './settings.js';
import { median } from './stats.js';

const TOPICS = Math.round(envNumber('BENCH_CLUSTER_TOPICS', 9, 1));
const SUBSCRIBERS = Math.round(envNumber('BENCH_CLUSTER_SUBSCRIBERS', 30, 1));
const PUBLISHERS = Math.round(envNumber('BENCH_CLUSTER_PUBLISHERS', 3, 1));
const PAYLOAD_BYTES = Math.round(envNumber('BENCH_CLUSTER_PAYLOAD', 100, 40));
const IN_FLIGHT = Math.round(envNumber('BENCH_CLUSTER_IN_FLIGHT', 16, 1));
const INPROCESS_SUBSCRIBERS = Math.round(envNumber('BENCH_INPROCESS_SUBSCRIBERS', 500, 1));
const CLUSTER_PROCESSES = 3;
/** Outside CPU use above this (cores) makes a run noisy enough to say so. */
const NOISY_OTHER_LOAD = 0.25;

/** One side of a scenario: its server kind, how the client talks to it, and its name in the table. */
interface Side {
  name: string;
  kind: ClusterServerKind;
  protocol: FanoutProtocol;
}

interface Scenario {
  name: string;
  processes: number;
  /** Whether the servers share the benchmark's redis-server (and its CPU is measured). */
  redis: boolean;
  request: Pick<FanoutRequest, 'topics' | 'subscribersPerTopic' | 'publishersPerServer' | 'payloadBytes' | 'inFlight'>;
  /** ours first, then the side ours is divided by. */
  sides: [Side, Side];
}

const ALL_SCENARIOS: Scenario[] = [
  {
    name: 'cluster',
    processes: CLUSTER_PROCESSES,
    redis: true,
    request: { topics: TOPICS, subscribersPerTopic: SUBSCRIBERS, publishersPerServer: PUBLISHERS, payloadBytes: PAYLOAD_BYTES, inFlight: IN_FLIGHT },
    sides: [
      { name: 'ours', kind: 'cluster-ours', protocol: 'ws' },
      { name: 'socket.io', kind: 'cluster-socketio', protocol: 'socketio' },
    ],
  },
  {
    name: 'in-process',
    processes: 1,
    redis: false,
    request: { topics: 1, subscribersPerTopic: INPROCESS_SUBSCRIBERS, publishersPerServer: 1, payloadBytes: PAYLOAD_BYTES, inFlight: IN_FLIGHT },
    sides: [
      { name: 'ours', kind: 'cluster-ours', protocol: 'ws' },
      { name: 'ws loop', kind: 'cluster-ws', protocol: 'ws' },
    ],
  },
];

const selected = process.env.BENCH_CLUSTER_SCENARIOS?.split(',').map((name) => name.trim());
const unknown = selected?.filter((name) => !ALL_SCENARIOS.some((scenario) => scenario.name === name)) ?? [];
if (unknown.length > 0) throw new Error(`BENCH_CLUSTER_SCENARIOS: unknown ${unknown.join(', ')}; known: ${ALL_SCENARIOS.map((s) => s.name).join(', ')}`);
const SCENARIOS = ALL_SCENARIOS.filter((scenario) => selected === undefined || selected.includes(scenario.name));

interface Measurement {
  deliveriesPerSecond: number;
  p50: number;
  p99: number;
  /** CPU of all the side's server processes per delivery. */
  serverUsPerDelivery: number;
  /** Cores' worth of CPU over the window: the side's servers together, redis-server, the client, everything else. */
  serverCpu: number;
  redisCpu: number;
  clientCpu: number;
  otherLoad: number;
  delivered: number;
  expected: number;
  orderViolations: number;
}

/** The side's servers, and the redis-server when the scenario has one, at one edge of the measured window. */
interface Sample {
  servers: Promise<Array<{ micros: number; wallNanos: bigint }>>;
  redis: Promise<number>;
  machine: ReturnType<typeof machineTimes>;
}

/** redis-server's CPU seconds so far (INFO cpu: used_cpu_user + used_cpu_sys, all its threads). */
async function redisCpuSeconds(redis: RedisServer): Promise<number> {
  const info = await redis.command('INFO', 'cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function runSide(scenario: Scenario, side: Side, servers: EchoServer[], client: Child, redis: RedisServer | undefined): Promise<{ measurement: Measurement; errors: string[] }> {
  const request: FanoutRequest = {
    type: 'fanout',
    protocol: side.protocol,
    servers: servers.map((server) => (side.protocol === 'ws' ? server.url : server.url.replace(/^ws:\/\/([^/]+).*$/, 'http://$1'))),
    ...scenario.request,
    warmupMs: Math.round(WARMUP_SECONDS * 1000),
    measureMs: Math.round(SECONDS * 1000),
  };
  const samples: Partial<Record<WindowEdge['edge'], Sample>> = {};
  const stopListening = client.onEach<WindowEdge>('window', ({ edge }) => {
    samples[edge] = {
      machine: machineTimes(),
      servers: Promise.all(servers.map((server) => server.cpu())),
      redis: redis === undefined ? Promise.resolve(0) : redisCpuSeconds(redis),
    };
  });
  let result: FanoutResult;
  try {
    result = await client.request<FanoutResult>(request, 'fanout-result');
  } finally {
    stopListening();
  }
  let serverCpu = NaN;
  let redisCpu = NaN;
  let otherLoad = NaN;
  const { start, end } = samples;
  if (start !== undefined && end !== undefined) {
    const [from, to] = await Promise.all([start.servers, end.servers]);
    const wallSeconds = Number(to[0].wallNanos - from[0].wallNanos) / 1e9;
    serverCpu = to.reduce((sum, sample, n) => sum + (sample.micros - from[n].micros), 0) / 1e6 / wallSeconds;
    redisCpu = ((await end.redis) - (await start.redis)) / wallSeconds;
    if (start.machine !== undefined && end.machine !== undefined && end.machine.total > start.machine.total) {
      const machineCores = ((end.machine.busy - start.machine.busy) / (end.machine.total - start.machine.total)) * os.cpus().length;
      otherLoad = Math.max(0, machineCores - serverCpu - redisCpu - result.clientCpu);
    }
  }
  const seconds = result.seconds || NaN;
  const errors = [...result.errors];
  if (result.delivered !== result.expected) errors.push(`delivered ${result.delivered} of ${result.expected} expected deliveries`);
  if (result.orderViolations > 0) errors.push(`${result.orderViolations} deliveries out of their publisher's order`);
  return {
    measurement: {
      deliveriesPerSecond: result.deliveries / seconds,
      p50: result.latency.p50,
      p99: result.latency.p99,
      serverUsPerDelivery: (serverCpu * seconds * 1e6) / result.deliveries,
      serverCpu,
      redisCpu,
      clientCpu: result.clientCpu,
      otherLoad,
      delivered: result.delivered,
      expected: result.expected,
      orderViolations: result.orderViolations,
    },
    errors,
  };
}

function printRun(scenario: Scenario, round: number, side: Side, m: Measurement): void {
  console.log(
    `${scenario.name.padEnd(10)} round ${round}  ${side.name.padEnd(9)}  deliveries/s ${fmt(m.deliveriesPerSecond, 0)}  p50 ms ${fmt(m.p50, 2)}  ` +
      `p99 ms ${fmt(m.p99, 2)}  servers µs cpu/delivery ${fmt(m.serverUsPerDelivery, 2)}  delivered ${m.delivered}/${m.expected}  ` +
      `order violations ${m.orderViolations} | cpu servers ${pct(m.serverCpu)}${scenario.redis ? ` redis ${pct(m.redisCpu)}` : ''} client ${pct(m.clientCpu)} other ${pct(m.otherLoad)}`,
  );
}

interface Figure {
  label: string;
  better: string;
  digits: number;
  /** Of the rounds' measurements: the median for speed figures, the worst round for what must hold in every round. */
  of(runs: Measurement[]): number;
  /** A ratio ours/theirs is printed (not for correctness figures, which must be the same). */
  ratio: boolean;
}

const medianOf = (pick: (m: Measurement) => number) => (runs: Measurement[]) => median(runs.map(pick).filter(Number.isFinite));
const FIGURES: Figure[] = [
  { label: 'deliveries/s', better: 'higher', digits: 0, of: medianOf((m) => m.deliveriesPerSecond), ratio: true },
  { label: 'p50 ms', better: 'lower', digits: 2, of: medianOf((m) => m.p50), ratio: true },
  { label: 'p99 ms', better: 'lower', digits: 2, of: medianOf((m) => m.p99), ratio: true },
  { label: 'servers µs cpu/delivery', better: 'lower', digits: 2, of: medianOf((m) => m.serverUsPerDelivery), ratio: true },
  { label: 'delivered/expected %, worst round', better: '100', digits: 3, of: (runs) => Math.min(...runs.map((m) => (100 * m.delivered) / m.expected)), ratio: false },
  { label: 'order violations, worst round', better: '0', digits: 0, of: (runs) => Math.max(...runs.map((m) => m.orderViolations)), ratio: false },
];

function printTable(results: Map<Scenario, [Measurement[], Measurement[]]>): void {
  const rows = [['scenario', 'figure', 'better', 'ours', 'theirs', 'ours/theirs']];
  for (const [scenario, [ours, theirs]] of results) {
    for (const figure of FIGURES) {
      const [a, b] = [figure.of(ours), figure.of(theirs)];
      rows.push([`${scenario.name} (vs ${scenario.sides[1].name})`, figure.label, figure.better, fmt(a, figure.digits), fmt(b, figure.digits), figure.ratio ? fmt(a / b, 2) : '']);
    }
  }
  printColumns(rows);
  for (const [scenario, sides] of results) {
    const cpu = sides.map((runs, n) => {
      const share = (pick: (m: Measurement) => number) => pct(medianOf(pick)(runs));
      return `${scenario.sides[n].name} servers ${share((m) => m.serverCpu)}${scenario.redis ? ` redis ${share((m) => m.redisCpu)}` : ''} client ${share((m) => m.clientCpu)}`;
    });
    console.log(`(${scenario.name}, median cpu as share of one core: ${cpu.join('; ')})`);
  }
}

function printHeader(): void {
  console.log('nest-websocket-routes cluster benchmark: RedisBroker vs socket.io + @socket.io/redis-adapter; in-process publish vs a ws loop');
  console.log(`${nodeVersions()}; ${os.cpus().length} cores; ${ROUNDS} rounds; ${WARMUP_SECONDS} s warm-up + ${SECONDS} s measured per run`);
  for (const scenario of SCENARIOS) {
    const { topics, subscribersPerTopic, publishersPerServer, payloadBytes, inFlight } = scenario.request;
    console.log(
      `${scenario.name}: ${scenario.processes} server process${scenario.processes > 1 ? 'es' : ''} per side${scenario.redis ? ' on one redis-server' : ''}, ` +
        `${topics} topic${topics > 1 ? 's' : ''} x ${subscribersPerTopic} subscribers (spread evenly), ${publishersPerServer} publisher(s) per process, ` +
        `${payloadBytes}-byte text, ${inFlight} in flight per publisher; ${scenario.sides.map((side) => side.name).join(' vs ')}`,
    );
    const publishers = scenario.processes * publishersPerServer;
    if (publishers < topics) console.log(`  note: ${topics - publishers} of ${topics} topics have no publisher (publisher n publishes to topic n mod ${topics})`);
  }
  console.log(
    'deliveries/s = messages received by subscribers per second (one message to 30 subscribers is 30 deliveries); latency = client send\n' +
      'to subscriber receive; servers µs cpu/delivery = CPU of all the side\'s server processes (Redis not included) per delivery\n' +
      'cpu: share of one core during the measured window; "other" is load from outside the benchmark (high: figures less trustworthy)\n',
  );
  if (PROFILE_DIR !== undefined) console.log(`profiling servers (--cpu-prof): profiles go to ${PROFILE_DIR}\n`);
}

async function main(): Promise<string[]> {
  printHeader();
  const errors: string[] = [];
  let noisy = 0;
  const redis = await RedisServer.start();
  try {
    const client = new Child('./cluster-client.js', [], 'cluster client');
    const results = new Map<Scenario, [Measurement[], Measurement[]]>();
    for (const scenario of SCENARIOS) {
      const servers = new Map<Side, EchoServer[]>();
      for (const side of scenario.sides) {
        const started: EchoServer[] = [];
        for (let n = 1; n <= scenario.processes; n++) {
          started.push(await EchoServer.start(side.kind, `${scenario.name}-server-${n}`, scenario.redis ? [redis.url] : []));
        }
        servers.set(side, started);
      }
      const measured: [Measurement[], Measurement[]] = [[], []];
      for (let round = 1; round <= ROUNDS; round++) {
        // Each round starts with the other side, so that neither always meets a cold client or a busier Redis.
        for (const index of round % 2 === 1 ? [0, 1] : [1, 0]) {
          const side = scenario.sides[index];
          const outcome = await runSide(scenario, side, servers.get(side)!, client, scenario.redis ? redis : undefined);
          measured[index].push(outcome.measurement);
          if (outcome.measurement.otherLoad > NOISY_OTHER_LOAD) noisy++;
          printRun(scenario, round, side, outcome.measurement);
          for (const error of outcome.errors) errors.push(`${scenario.name}, round ${round}, ${side.name}: ${error}`);
        }
      }
      results.set(scenario, measured);
      for (const [side, started] of servers) {
        for (const server of started) if (!(await server.stop())) errors.push(`${scenario.name}: a ${side.name} server did not exit by itself`);
      }
    }
    console.log(`\nmedians of ${ROUNDS} rounds; ratios are ours/theirs: above 1 is good for ours where "better" says higher, bad where it says lower`);
    printTable(results);
    if (noisy > 0) console.log(`warning: ${noisy} runs had other load above ${pct(NOISY_OTHER_LOAD)} of a core; rerun on a quiet machine for figures to rely on`);
  } finally {
    await redis.remove();
  }
  return errors;
}

runBench(main);
