import type { ServerKind } from './messages.js';

/**
 * The benchmark's scenarios, one row each: what the client does against every server, and which figures
 * the final table shows for it. Everything else (the run, the per-run line, the table, the header) follows the row.
 */

export interface Figure {
  label: string;
  /** Which way is good, so that a ratio ours/other above 1 can be read: good for ours when `higher`. */
  better: 'higher' | 'lower';
  digits: number;
}

export const FIGURES = {
  msgsPerSecond: { label: 'msgs/s', better: 'higher', digits: 0 },
  mbPerSecond: { label: 'MB/s', better: 'higher', digits: 0 },
  p50: { label: 'p50 ms', better: 'lower', digits: 2 },
  p99: { label: 'p99 ms', better: 'lower', digits: 2 },
  serverUsPerMessage: { label: 'server µs cpu/msg', better: 'lower', digits: 1 },
  handshakesPerSecond: { label: 'handshakes/s', better: 'higher', digits: 0 },
  serverUsPerHandshake: { label: 'server µs cpu/handshake', better: 'lower', digits: 0 },
  rssKibPerConnection: { label: 'RSS KiB/conn', better: 'lower', digits: 1 },
  heapKibPerConnection: { label: 'JS heap+external KiB/conn', better: 'lower', digits: 1 },
} satisfies Record<string, Figure>;

export type FigureKey = keyof typeof FIGURES;

interface ScenarioBase {
  /** What BENCH_SCENARIOS selects it by. */
  name: string;
  figures: FigureKey[];
  connections: number;
}

/** Closed-loop echo: each connection keeps `inFlight` messages out for the measured window. */
export interface EchoScenario extends ScenarioBase {
  kind: 'echo';
  inFlight: number;
  payloadBytes: number;
  binary: boolean;
  /** permessage-deflate negotiated, with compressible text (JSON-like records, about 5:1) as the payload. */
  deflate: boolean;
  /**
   * 1: the `ws` client, one frame per write. More: the raw client (batch-client.ts) writes that many frames in one
   * socket write and the next batch once all their echoes came back (`inFlight` is then the same number).
   */
  framesPerWrite: number;
}

/**
 * Open `connections` on the running server, `concurrency` handshakes at a time, then close them; again and
 * again (after the same unmeasured), measured while opening, until BENCH_SECONDS of opening went by.
 */
export interface HandshakeScenario extends ScenarioBase {
  kind: 'handshake';
  concurrency: number;
  /** The server that stands for `ours` (its column and ratios): `ours-app`, a realistic app (servers/ours-app.ts); default `ours`. */
  oursServer?: ServerKind;
}

/**
 * On a server started for the run: open `baseline` connections, then `connections` more, `concurrency`
 * handshakes at a time, all held idle; the RSS they add, after a GC.
 */
export interface IdleScenario extends ScenarioBase {
  kind: 'idle';
  concurrency: number;
  baseline: number;
}

export type Scenario = EchoScenario | HandshakeScenario | IdleScenario;

const ECHO_FIGURES: FigureKey[] = ['msgsPerSecond', 'p50', 'p99', 'serverUsPerMessage'];

export const ALL_SCENARIOS: Scenario[] = [
  { name: 'small', kind: 'echo', connections: 50, inFlight: 1, payloadBytes: 32, binary: false, deflate: false, framesPerWrite: 1, figures: ECHO_FIGURES },
  { name: 'pipelined', kind: 'echo', connections: 50, inFlight: 32, payloadBytes: 32, binary: false, deflate: false, framesPerWrite: 1, figures: ECHO_FIGURES },
  { name: 'batched', kind: 'echo', connections: 50, inFlight: 32, payloadBytes: 32, binary: false, deflate: false, framesPerWrite: 32, figures: ECHO_FIGURES },
  {
    name: 'large',
    kind: 'echo',
    connections: 4,
    inFlight: 1,
    payloadBytes: 1024 * 1024,
    binary: true,
    deflate: false,
    framesPerWrite: 1,
    figures: ['mbPerSecond', 'p50', 'p99', 'serverUsPerMessage'],
  },
  { name: 'deflate', kind: 'echo', connections: 10, inFlight: 1, payloadBytes: 64 * 1024, binary: false, deflate: true, framesPerWrite: 1, figures: ECHO_FIGURES },
  { name: 'handshake', kind: 'handshake', connections: 2_000, concurrency: 100, figures: ['handshakesPerSecond', 'serverUsPerHandshake'] },
  {
    name: 'handshake-app',
    kind: 'handshake',
    connections: 2_000,
    concurrency: 100,
    oursServer: 'ours-app',
    figures: ['handshakesPerSecond', 'serverUsPerHandshake'],
  },
  { name: 'idle', kind: 'idle', connections: 2_000, concurrency: 100, baseline: 200, figures: ['rssKibPerConnection', 'heapKibPerConnection'] },
];

/** The server child to start for `kind` in this scenario: `ours` may be stood for by another (HandshakeScenario.oursServer). */
export function serverKindFor(scenario: Scenario, kind: ServerKind): ServerKind {
  return kind === 'ours' && scenario.kind === 'handshake' ? (scenario.oursServer ?? kind) : kind;
}

const size = (bytes: number) =>
  bytes >= 1024 * 1024 ? `${bytes / (1024 * 1024)} MiB` : bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes}-byte`;

/** One line saying what the scenario does, for the printed header. */
export function summary(scenario: Scenario): string {
  switch (scenario.kind) {
    case 'echo':
      return (
        `${scenario.connections} connections x ${size(scenario.payloadBytes)} ${scenario.binary ? 'binary' : 'text'} echo${scenario.deflate ? ' with permessage-deflate (compressible JSON-like text)' : ''}, ` +
        (scenario.framesPerWrite > 1
          ? `a raw TCP client writing ${scenario.framesPerWrite} masked frames per socket write, the next batch once all ${scenario.framesPerWrite} came back`
          : `closed loop, ${scenario.inFlight} in flight per connection`) +
        '; latency = send to echo, per message'
      );
    case 'handshake':
      return (
        (scenario.oursServer === 'ours-app'
          ? 'as handshake, but ours is a realistic app (servers/ours-app.ts: 12 WebSocket routes and 2 HTTP routes on 4 controllers, ' +
            'a guard on one controller checking a query token), each handshake to that controller\'s guarded echo route; ws and gateway as in handshake: '
          : '') +
        `open ${scenario.connections} connections on the running server, ${scenario.concurrency} handshakes at a time, then close them, ` +
        'again and again for as long as an echo run, measured while opening; after the same, unmeasured, for as long as an echo warm-up'
      );
    case 'idle':
      return (
        `on a server started for the run, ${scenario.baseline} connections open: its RSS after GC with ${scenario.connections} idle ` +
        'connections more, minus before, per connection (1 KiB = 1024 bytes); the same for V8 heap used + external memory'
      );
  }
}
