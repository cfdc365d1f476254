/** IPC messages between the benchmark's orchestrator and its server and load-client child processes. */

export type ServerKind = 'ours' | 'ws';
export type ScenarioName = 'small' | 'large';

/** Orchestrator -> load client: run one scenario against one server. */
export interface RunRequest {
  type: 'run';
  url: string;
  scenario: ScenarioName;
  connections: number;
  payloadBytes: number;
  binary: boolean;
  warmupMs: number;
  measureMs: number;
}

/** Load client -> orchestrator: the measured window opens or closes (the orchestrator then samples server CPU). */
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

/** Load client -> orchestrator: what one scenario run measured. */
export interface RunResult {
  type: 'result';
  /** Echoes received inside the measured window. */
  messages: number;
  /** Echoed payload bytes received inside the measured window. */
  bytes: number;
  /** Actual length of the measured window. */
  seconds: number;
  /** Round-trip times in ms of the echoes received inside the window. */
  latency: LatencySummary;
  /** Client CPU time over the window divided by its length (1 = one core busy). */
  clientCpu: number;
  /** Echo mismatches, connection errors, unexpected closes: any entry fails the benchmark. */
  errors: string[];
}

/** Server child -> orchestrator. */
export type ServerMessage =
  | { type: 'ready'; port: number; path: string; pid: number }
  | { type: 'cpu'; micros: number; wallNanos: string };

/** Orchestrator -> server child. */
export type ServerCommand = { type: 'cpu' } | { type: 'stop' };
