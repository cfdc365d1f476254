/** The benchmark's printed output: a line per run, and the final table of medians and ratios. */
import type { ServerKind } from './messages.js';
import type { Measurement, RunOutcome } from './run-scenario.js';
import { FIGURES, type Scenario } from './scenarios.js';
import { WS_PLAIN } from './settings.js';
import { median } from './stats.js';

export const SERVERS: ServerKind[] = WS_PLAIN ? ['ours', 'ws', 'ws-plain', 'gateway'] : ['ours', 'ws', 'gateway'];
/** The servers ours is divided by, one ratio column each. */
const OTHERS = SERVERS.filter((kind) => kind !== 'ours');

export const fmt = (value: number | undefined, digits: number) => (value !== undefined && Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
export const pct = (value: number) => (Number.isFinite(value) ? `${Math.round(value * 100)}%` : 'n/a');

/** Pads every column to its widest cell. */
export function printColumns(rows: string[][]): void {
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd());
}

/** Every run's measurement, by scenario and server. */
export class Results {
  private readonly byKey = new Map<string, Measurement[]>();

  add(scenario: Scenario, kind: ServerKind, measurement: Measurement): void {
    const key = `${scenario.name}/${kind}`;
    this.byKey.set(key, [...(this.byKey.get(key) ?? []), measurement]);
  }

  runs(scenario: Scenario, kind: ServerKind, include: (m: Measurement) => boolean = () => true): Measurement[] {
    return (this.byKey.get(`${scenario.name}/${kind}`) ?? []).filter(include);
  }

  all(): Measurement[] {
    return [...this.byKey.values()].flat();
  }
}

export function printRun(scenario: Scenario, round: number, kind: ServerKind, outcome: RunOutcome): void {
  const { figures, serverCpu, clientCpu, otherLoad } = outcome.measurement;
  const values = scenario.figures.map((key) => `${FIGURES[key].label} ${fmt(figures[key], FIGURES[key].digits)}`);
  const cpu = Number.isFinite(serverCpu) ? ` | cpu server ${pct(serverCpu)} client ${pct(clientCpu)} other ${pct(otherLoad)}` : '';
  console.log(`${scenario.name.padEnd(9)} round ${round}  ${kind.padEnd(8)}  ${values.join('  ')}${outcome.detail ? `  (${outcome.detail})` : ''}${cpu}`);
}

/** Medians per server, ours/other for each, and how many runs each median is of when not all `rounds`. */
export function printTable(scenarios: Scenario[], results: Results, rounds: number, include: (m: Measurement) => boolean): void {
  const rows = [['scenario', 'figure', 'better', ...SERVERS, ...OTHERS.map((kind) => `ours/${kind}`), '']];
  for (const scenario of scenarios) {
    for (const key of scenario.figures) {
      const { label, better, digits } = FIGURES[key];
      const medians = new Map(
        SERVERS.map((kind) => [kind, median(results.runs(scenario, kind, include).map((m) => m.figures[key] ?? NaN).filter(Number.isFinite))]),
      );
      const counts = SERVERS.map((kind) => results.runs(scenario, kind, include).length);
      rows.push([
        scenario.name,
        label,
        better,
        ...SERVERS.map((kind) => fmt(medians.get(kind), digits)),
        ...OTHERS.map((kind) => fmt(medians.get('ours')! / medians.get(kind)!, 2)),
        counts.every((count) => count === rounds) ? '' : `(n = ${counts.join('/')})`,
      ]);
    }
  }
  printColumns(rows);
  const cpuNote = (scenario: Scenario) =>
    SERVERS.map((kind) => {
      const share = (pick: (m: Measurement) => number) => pct(median(results.runs(scenario, kind, include).map(pick).filter(Number.isFinite)));
      return `${kind} ${share((m) => m.serverCpu)}/${share((m) => m.clientCpu)}`;
    }).join(', ');
  const windowed = scenarios.filter((scenario) => results.runs(scenario, 'ours', include).some((m) => Number.isFinite(m.serverCpu)));
  if (windowed.length > 0) console.log(`(median cpu server/client: ${windowed.map((scenario) => `${scenario.name} ${cpuNote(scenario)}`).join('; ')})`);
}
