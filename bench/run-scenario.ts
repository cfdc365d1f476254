/**
 * One run of one scenario against one server kind, from the orchestrator: sends the client its request,
 * samples the server's CPU (and the machine's) when the client opens and closes its measured window,
 * and turns what came back into the scenario's figures.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { EchoServer, type Child } from './children.js';
import type { CloseResult, EchoRequest, EchoResult, OpenRequest, OpenResult, ServerKind, WindowEdge } from './messages.js';
import type { EchoScenario, FigureKey, HandshakeScenario, IdleScenario, Scenario } from './scenarios.js';
import { SECONDS, WARMUP_SECONDS } from './settings.js';

/** A bound on the measured windows of a handshake run, whatever their length. */
const MAX_HANDSHAKE_WINDOWS = 50;

export interface Measurement {
  figures: Partial<Record<FigureKey, number>>;
  /** Shares of one core over the measured window; NaN where the scenario has no window. */
  serverCpu: number;
  clientCpu: number;
  /** Cores' worth of CPU used by anything else on the machine during the window: the noise the run suffered. */
  otherLoad: number;
}

export interface RunOutcome {
  measurement: Measurement;
  /** Anything broken (echo mismatch, connection error, ...): fails the benchmark. */
  errors: string[];
  /** Extra figures for the per-run line only. */
  detail?: string;
}

export interface Clients {
  /** load-client.ts: echo scenarios that write one frame per write. */
  load: Child;
  /** batch-client.ts: echo scenarios that write many frames per write. */
  batch: Child;
  /** connect-client.ts: handshake and idle scenarios. */
  connect: Child;
}

/** Busy and total CPU time of the whole machine (Linux /proc/stat, in ticks), or undefined elsewhere. */
export function machineTimes(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    // idle and iowait are the two non-busy columns.
    return { busy: total - fields[3] - fields[4], total };
  } catch {
    return undefined;
  }
}

interface Sample {
  cpu: Promise<{ micros: number; wallNanos: bigint }>;
  machine: ReturnType<typeof machineTimes>;
}

/** Sends a measured request and waits for its result, sampling server and machine CPU at the window's edges. */
async function windowed<T extends EchoResult | OpenResult>(
  client: Child,
  server: EchoServer,
  request: EchoRequest | OpenRequest,
  replyType: T['type'],
): Promise<{ result: T; cpu: Omit<Measurement, 'figures'> }> {
  const samples: Partial<Record<WindowEdge['edge'], Sample>> = {};
  const stopListening = client.onEach<WindowEdge>('window', ({ edge }) => {
    samples[edge] = { machine: machineTimes(), cpu: server.cpu() };
  });
  try {
    const result = await client.request<T>(request, replyType);
    const { start, end } = samples;
    let serverCpu = NaN;
    let machineCores = NaN;
    if (start !== undefined && end !== undefined) {
      const [from, to] = await Promise.all([start.cpu, end.cpu]);
      serverCpu = (to.micros - from.micros) / (Number(to.wallNanos - from.wallNanos) / 1e3);
      if (start.machine !== undefined && end.machine !== undefined && end.machine.total > start.machine.total) {
        machineCores = ((end.machine.busy - start.machine.busy) / (end.machine.total - start.machine.total)) * os.cpus().length;
      }
    }
    const otherLoad = Math.max(0, machineCores - serverCpu - result.clientCpu);
    return { result, cpu: { serverCpu, clientCpu: result.clientCpu, otherLoad } };
  } finally {
    stopListening();
  }
}

async function echo(scenario: EchoScenario, server: EchoServer, clients: Clients): Promise<RunOutcome> {
  const request: EchoRequest = {
    type: 'run',
    url: scenario.deflate ? server.deflateUrl : server.url,
    connections: scenario.connections,
    inFlight: scenario.inFlight,
    payloadBytes: scenario.payloadBytes,
    binary: scenario.binary,
    deflate: scenario.deflate,
    framesPerWrite: scenario.framesPerWrite,
    warmupMs: Math.round(WARMUP_SECONDS * 1000),
    measureMs: Math.round(SECONDS * 1000),
  };
  const client = scenario.framesPerWrite > 1 ? clients.batch : clients.load;
  const { result, cpu } = await windowed<EchoResult>(client, server, request, 'result');
  const seconds = result.seconds || NaN;
  const figures = {
    msgsPerSecond: result.messages / seconds,
    mbPerSecond: result.bytes / 1e6 / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    serverUsPerMessage: (cpu.serverCpu * seconds * 1e6) / result.messages,
  };
  return { measurement: { ...cpu, figures }, errors: result.errors };
}

const openRequest = (scenario: HandshakeScenario | IdleScenario, server: EchoServer, connections = scenario.connections): OpenRequest => ({
  type: 'open',
  url: server.url,
  connections,
  concurrency: scenario.concurrency,
});

/** The connect client's requests, with their errors gathered in one list. */
function connectSteps(scenario: HandshakeScenario | IdleScenario, server: EchoServer, clients: Clients, errors: string[]) {
  return {
    open: async (connections: number) => {
      const opened = await clients.connect.request<OpenResult>(openRequest(scenario, server, connections), 'opened');
      errors.push(...opened.errors);
      return opened.opened;
    },
    close: async () => {
      errors.push(...(await clients.connect.request<CloseResult>({ type: 'close' }, 'closed')).errors);
    },
  };
}

async function handshake(scenario: HandshakeScenario, server: EchoServer, clients: Clients): Promise<RunOutcome> {
  const errors: string[] = [];
  const steps = connectSteps(scenario, server, clients, errors);
  // Warm-up, as long as an echo run's: the same open and close, unmeasured, at least once (a few thousand
  // handshakes go by before a server's handshake path is at its steady speed).
  const warmUpUntil = Date.now() + WARMUP_SECONDS * 1000;
  do {
    await steps.open(scenario.connections);
    await steps.close();
  } while (Date.now() < warmUpUntil);
  // Measured opens, each followed by an unmeasured close, until SECONDS of opening went by: one window of
  // 2 000 handshakes lasts a fraction of a second, where a single garbage collection moves the figure.
  let opened = 0;
  let seconds = 0;
  const cpuSeconds = { server: 0, client: 0, other: 0 };
  for (let window = 0; window < MAX_HANDSHAKE_WINDOWS && seconds < SECONDS; window++) {
    const { result, cpu } = await windowed<OpenResult>(clients.connect, server, openRequest(scenario, server), 'opened');
    errors.push(...result.errors);
    await steps.close();
    if (!(result.seconds > 0) || result.opened === 0) break;
    opened += result.opened;
    seconds += result.seconds;
    cpuSeconds.server += cpu.serverCpu * result.seconds;
    cpuSeconds.client += cpu.clientCpu * result.seconds;
    cpuSeconds.other += cpu.otherLoad * result.seconds;
  }
  const figures = {
    handshakesPerSecond: opened / seconds,
    serverUsPerHandshake: (cpuSeconds.server * 1e6) / opened,
  };
  const measurement = { serverCpu: cpuSeconds.server / seconds, clientCpu: cpuSeconds.client / seconds, otherLoad: cpuSeconds.other / seconds };
  return { measurement: { ...measurement, figures }, errors };
}

async function idle(scenario: IdleScenario, kind: ServerKind, clients: Clients): Promise<RunOutcome> {
  const server = await EchoServer.start(kind);
  const errors: string[] = [];
  const steps = connectSteps(scenario, server, clients, errors);
  try {
    // The baseline connections stay open: one-time costs (code, lazy state) are paid before the first RSS
    // sample, and no memory freed by closed connections is there for the measured ones to reuse.
    await steps.open(scenario.baseline);
    const before = await server.memory();
    const opened = await steps.open(scenario.connections);
    const during = await server.memory();
    await steps.close();
    const perConnection = (bytes: number) => bytes / 1024 / opened;
    const mib = (bytes: number) => (bytes / (1024 * 1024)).toFixed(1);
    const figures = {
      rssKibPerConnection: perConnection(during.rss - before.rss),
      heapKibPerConnection: perConnection(during.heap - before.heap),
    };
    return {
      measurement: { serverCpu: NaN, clientCpu: NaN, otherLoad: NaN, figures },
      errors,
      detail: `server RSS ${mib(before.rss)} MiB with ${scenario.baseline} open, ${mib(during.rss)} MiB with ${opened} more`,
    };
  } finally {
    if (!(await server.stop())) errors.push(`${kind} server started for the idle run did not exit by itself`);
  }
}

/** `servers` are the long-lived ones; the idle scenario starts a fresh server of the kind for each run. */
export function runScenario(scenario: Scenario, kind: ServerKind, servers: Map<ServerKind, EchoServer>, clients: Clients): Promise<RunOutcome> {
  switch (scenario.kind) {
    case 'echo':
      return echo(scenario, servers.get(kind)!, clients);
    case 'handshake':
      return handshake(scenario, servers.get(kind)!, clients);
    case 'idle':
      return idle(scenario, kind, clients);
  }
}
