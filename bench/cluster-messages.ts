/** IPC messages between the cluster benchmark's orchestrator (cluster.bench.ts) and its client child (cluster-client.ts). */
import type { LatencySummary } from './messages.js';

/** How the client talks to a side's servers: plain WebSocket text (ours, the ws loop) or socket.io events. */
export type FanoutProtocol = 'ws' | 'socketio';

/**
 * Orchestrator -> client: one closed-loop fan-out run. Subscriber j of topic t connects to server (t * subscribersPerTopic + j)
 * % servers; publisher p of server s is publisher s * publishersPerServer + p and publishes to topic (that number) % topics,
 * keeping `inFlight` messages out: it sends the next as each one reached every subscriber of its topic.
 */
export interface FanoutRequest {
  type: 'fanout';
  protocol: FanoutProtocol;
  /** One per server process: ws://127.0.0.1:port/fanout, or http://127.0.0.1:port for socket.io. */
  servers: string[];
  topics: number;
  subscribersPerTopic: number;
  publishersPerServer: number;
  payloadBytes: number;
  inFlight: number;
  warmupMs: number;
  measureMs: number;
}

/** Client -> orchestrator: what one fan-out run measured. */
export interface FanoutResult {
  type: 'fanout-result';
  /** Actual length of the measured window. */
  seconds: number;
  /** Client CPU time over the window divided by its length (1 = one core busy). */
  clientCpu: number;
  /** Deliveries (one message reaching one subscriber) inside the measured window. */
  deliveries: number;
  /** Publish (client send) to receive, in ms, of the deliveries inside the window. */
  latency: LatencySummary;
  /** Over the whole run, warm-up and drain included: deliveries each sent message should have made, and those made. */
  expected: number;
  delivered: number;
  /** Deliveries whose sequence number was not above the last one that subscriber had from that publisher. */
  orderViolations: number;
  /** Connection errors, unexpected closes, messages on the wrong topic, deliveries still missing: any entry fails the benchmark. */
  errors: string[];
}
