/** IPC messages between the benchmark's orchestrator and its server and client child processes. */

/** `ours-app` stands for `ours` in the scenarios that name it (scenarios.ts `oursServer`): a realistic app, not one route. */
export type ServerKind = 'ours' | 'ours-app' | 'ws' | 'ws-plain' | 'gateway' | ClusterServerKind;
/** The fan-out servers of cluster.bench.ts (servers/cluster-*.ts). */
export type ClusterServerKind = 'cluster-ours' | 'cluster-socketio' | 'cluster-ws';

/** Orchestrator -> load client: run one closed-loop echo scenario against one server. */
export interface EchoRequest {
  type: 'run';
  url: string;
  connections: number;
  /** Messages each connection keeps in flight: a new one goes out as each echo comes back. */
  inFlight: number;
  payloadBytes: number;
  binary: boolean;
  /** Offer permessage-deflate (the url is then the server's deflate path) and send compressible text. */
  deflate: boolean;
  /** Frames per socket write: 1 for the `ws` client (load-client.ts), more for the raw one (batch-client.ts). */
  framesPerWrite: number;
  warmupMs: number;
  measureMs: number;
}

/** Orchestrator -> connect client: open this many connections, at most `concurrency` handshakes at a time, and hold them. */
export interface OpenRequest {
  type: 'open';
  url: string;
  connections: number;
  concurrency: number;
}

/** Client -> orchestrator: the measured window opens or closes (the orchestrator then samples server CPU). */
export interface WindowEdge {
  type: 'window';
  edge: 'start' | 'end';
}

export interface LatencySummary {
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

/** What every measured client run reports. */
interface WindowResult {
  /** Actual length of the measured window. */
  seconds: number;
  /** Client CPU time over the window divided by its length (1 = one core busy). */
  clientCpu: number;
  /** Echo mismatches, connection errors, unexpected closes, failed handshakes: any entry fails the benchmark. */
  errors: string[];
}

/** Load client -> orchestrator: what one echo run measured. */
export interface EchoResult extends WindowResult {
  type: 'result';
  /** Echoes received inside the measured window. */
  messages: number;
  /** Echoed payload bytes received inside the measured window. */
  bytes: number;
  /** Round-trip times in ms of the echoes received inside the window. */
  latency: LatencySummary;
}

/** Connect client -> orchestrator: the connections are open (the window is the time they took) and held. */
export interface OpenResult extends WindowResult {
  type: 'opened';
  opened: number;
}

/** Connect client -> orchestrator: every held connection ran its close handshake (or the errors say which did not). */
export interface CloseResult {
  type: 'closed';
  errors: string[];
}

/** Server child -> orchestrator. */
export type ServerMessage =
  | {
      type: 'ready';
      port: number;
      path: string;
      deflatePath: string;
      pid: number;
      /** The server's process.version, and what else it says about how it runs (servers/*.ts `about`). */
      node: string;
      about?: string;
    }
  | { type: 'cpu'; micros: number; wallNanos: string }
  | { type: 'memory'; rss: number; heap: number };

/** Orchestrator -> server child; `memory` collects garbage first. */
export type ServerCommand = { type: 'cpu' } | { type: 'memory' } | { type: 'stop' };
