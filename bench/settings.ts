/** The benchmark's knobs, read once from the environment (documented in echo.bench.ts). */
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ALL_SCENARIOS } from './scenarios.js';

export function envNumber(name: string, fallback: number, minimum: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < minimum) throw new Error(`${name} must be a number >= ${minimum}, got ${raw}`);
  return value;
}

export const SECONDS = envNumber('BENCH_SECONDS', 3, 0.2);
export const ROUNDS = Math.round(envNumber('BENCH_ROUNDS', 3, 1));
export const WARMUP_SECONDS = envNumber('BENCH_WARMUP', Math.min(1, SECONDS / 2), 0);
/** Long-lived server children run with --cpu-prof: where their time goes, for chrome://inspect or profile-summary.js. */
export const PROFILE_DIR = process.env.BENCH_PROFILE ? fileURLToPath(new URL('./profiles/', import.meta.url)) : undefined;
/**
 * BENCH_NODE=/path/to/node: the Node binary the server children run on (the clients and this process stay on the
 * Node that runs the bench), e.g. one installed by scripts/install-node.sh.
 */
export const SERVER_NODE = serverNode(process.env.BENCH_NODE);
/**
 * BENCH_SERVER_FLAGS='--max-semi-space-size=1': Node/V8 flags for every server child (ours and the others alike),
 * e.g. to see how V8's heap sizing changes a scenario. The header prints them.
 */
export const SERVER_FLAGS = (process.env.BENCH_SERVER_FLAGS ?? '').split(/\s+/).filter((flag) => flag !== '');
/** BENCH_WS_PLAIN=1 adds a `ws-plain` server: `ws` with WS_NO_BUFFER_UTIL=1, its JavaScript masking instead of bufferutil's. */
export const WS_PLAIN = Boolean(process.env.BENCH_WS_PLAIN);

function serverNode(path: string | undefined): string | undefined {
  if (path === undefined || path === '') return undefined;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`BENCH_NODE must be an executable Node binary, got ${path} (scripts/install-node.sh <version> installs one)`);
  }
  return path;
}

/** A child that does not answer for this long has hung: the run fails instead of waiting forever. */
export const REPLY_TIMEOUT_MS = (WARMUP_SECONDS + SECONDS) * 1000 + 30_000;

const selected = process.env.BENCH_SCENARIOS ? process.env.BENCH_SCENARIOS.split(',').map((name) => name.trim()) : undefined;
const unknown = selected?.filter((name) => !ALL_SCENARIOS.some((scenario) => scenario.name === name)) ?? [];
if (unknown.length > 0) {
  throw new Error(`BENCH_SCENARIOS: unknown ${unknown.join(', ')}; known: ${ALL_SCENARIOS.map((scenario) => scenario.name).join(', ')}`);
}
/** BENCH_SCENARIOS=small,idle runs those only, e.g. to profile one alone. */
export const SCENARIOS = ALL_SCENARIOS.filter((scenario) => selected === undefined || selected.includes(scenario.name));
