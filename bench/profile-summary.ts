/** Summarizes a V8 .cpuprofile (from BENCH_PROFILE=1): self time by area (lib, ws, Node, native, GC), function and file. */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (file === undefined) {
  console.error('usage: node build/bench/profile-summary.js <file.cpuprofile> [top]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map<number, number>();
profile.samples.forEach((id, index) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0)));

const shortUrl = (url: string) => url.replace(/^file:\/\/.*?\/(dist|build|node_modules)\//, '$1/').replace(/^node:/, 'node:');
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
const byArea = new Map<string, number>();
/** Coarse buckets: this library, the sample, ws, Node's JS, native (syscalls, C++ builtins), GC, idle. */
const area = (functionName: string, url: string): string => {
  // node_modules first: packages have dist/ folders of their own (rxjs, used by the gateway).
  if (url.includes('/node_modules/ws/')) return 'ws';
  if (url.includes('/node_modules/')) return 'other node_modules';
  if (url.includes('/dist/')) return 'lib (dist/)';
  if (url.includes('/build/')) return 'sample + bench (build/)';
  if (url.startsWith('node:')) return 'node JS internals';
  if (functionName === '(idle)') return 'idle';
  if (functionName === '(garbage collector)') return 'gc';
  if (functionName === '(program)') return 'program (V8/native, unattributed)';
  return 'native (syscalls, C++ builtins)';
};
let total = 0;
for (const [id, micros] of selfMicros) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const where = url === '' ? '(native)' : shortUrl(url);
  const name = `${functionName || '(anonymous)'}  ${where}${url === '' ? '' : `:${lineNumber + 1}`}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
  byFile.set(where, (byFile.get(where) ?? 0) + micros);
  byArea.set(area(functionName, url), (byArea.get(area(functionName, url)) ?? 0) + micros);
  total += micros;
}
const print = (title: string, entries: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, micros] of [...entries].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${((100 * micros) / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(6)} ms  ${name}`);
  }
};
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`);
print('self time by area', byArea);
print('self time by function', byFunction);
print('self time by file', byFile);
