/**
 * What both echo load clients (load-client.ts, batch-client.ts) keep of one closed-loop run: its phase, its
 * errors, and the echoes counted in the measured window; and how that becomes the result sent to the orchestrator.
 */
import { ErrorList, warmUpMeasureDrain, type PhasedRun } from './client-sockets.js';
import type { EchoRequest, EchoResult } from './messages.js';
import { summarizeLatencies } from './stats.js';

/** How long in-flight echoes may take to come back once the window closed, before that counts as broken. */
const DRAIN_TIMEOUT_MS = 10_000;

export class EchoRun {
  readonly errors = new ErrorList();
  readonly progress: PhasedRun;
  private readonly latencies: number[] = [];
  private messages = 0;
  private bytes = 0;
  private window = { seconds: 0, clientCpu: 0 };

  /** `allEchoed`: every message sent so far came back. */
  constructor(allEchoed: () => boolean) {
    // A broken run does not wait for what is still out.
    this.progress = { phase: 'warmup', idle: () => allEchoed() || this.errors.count > 0 };
  }

  /** Records what broke and ends the run: no more sends, the drain ends at once. */
  fail(message: string): void {
    this.errors.add(message);
    this.progress.phase = 'drain';
    this.progress.onDrained?.();
  }

  /** A correct echo of `bytes` bytes, `latencyMs` after it was sent; counted only inside the measured window. */
  echoed(bytes: number, latencyMs: number): void {
    if (this.progress.phase !== 'measure') return;
    this.messages++;
    this.bytes += bytes;
    this.latencies.push(latencyMs);
  }

  /** Whether the connection that just got an echo sends again; tells the drain when it ends with this echo. */
  keepSending(allEchoed: boolean): boolean {
    if (this.progress.phase === 'warmup' || this.progress.phase === 'measure') return true;
    if (this.progress.phase === 'drain' && allEchoed) this.progress.onDrained?.();
    return false;
  }

  /** With the first messages sent: warm-up, the measured window, the drain. */
  async measure(request: EchoRequest): Promise<void> {
    const { window, drained } = await warmUpMeasureDrain(this.progress, { ...request, drainTimeoutMs: DRAIN_TIMEOUT_MS });
    if (!drained) this.errors.add(`echoes still missing ${DRAIN_TIMEOUT_MS} ms after the window closed`);
    this.window = window;
  }

  result(): EchoResult {
    const { messages, bytes, window } = this;
    return { type: 'result', messages, bytes, ...window, latency: summarizeLatencies(this.latencies), errors: this.errors.toArray() };
  }
}
