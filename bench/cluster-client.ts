/**
 * Benchmark child process: the cluster benchmark's fan-out client (cluster.bench.ts). For each request it
 * connects the subscribers and publishers over the side's protocol (`ws` for ours and the ws loop,
 * socket.io-client for socket.io), runs a closed loop (each publisher keeps `inFlight` messages out and sends
 * the next once one reached every subscriber of its topic), and checks every delivery: right topic, order per
 * publisher, nothing lost. Publishers and subscribers share this process, so the timestamp a message carries
 * and the time it arrives come from one clock.
 */
import { io, type Socket } from 'socket.io-client';
import { closeSocket, connect, ErrorList, serveOrchestrator, warmUpMeasureDrain, type PhasedRun } from './client-sockets.js';
import type { FanoutProtocol, FanoutRequest, FanoutResult } from './cluster-messages.js';
import { quantileSorted } from './stats.js';

/** How long the messages still out may take to reach everyone once the window closed, before that counts as lost. */
const DRAIN_TIMEOUT_MS = 10_000;
const SUBSCRIBE_TIMEOUT_MS = 10_000;
/** Connections opened at a time. */
const CONNECT_BATCH = 100;

/** One client connection, whatever the protocol. */
interface Endpoint {
  send(text: string): void;
  close(): Promise<void>;
}

interface EndpointHandlers {
  /** A message published to the topic. */
  onMessage(text: string): void;
  /** The connection broke during the run. */
  onError(message: string): void;
}

/**
 * Connects and, for a subscriber, resolves once the server said `subscribed` (so nothing published after this
 * resolves is missed); `isClosing` tells an expected close from a broken connection.
 */
async function open(
  protocol: FanoutProtocol,
  server: string,
  query: { topic: string; role: 'sub' | 'pub' },
  handlers: EndpointHandlers,
  isClosing: () => boolean,
  name: string,
): Promise<Endpoint> {
  const subscribed = query.role === 'sub';
  return protocol === 'ws' ? openWs(server, query, subscribed, handlers, isClosing, name) : openSocketIo(server, query, subscribed, handlers, isClosing);
}

async function openWs(
  server: string,
  query: { topic: string; role: string },
  subscribed: boolean,
  handlers: EndpointHandlers,
  isClosing: () => boolean,
  name: string,
): Promise<Endpoint> {
  let ready: () => void = () => undefined;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  let confirmed = !subscribed;
  const socket = await connect(`${server}?topic=${encodeURIComponent(query.topic)}&role=${query.role}`, false, (socket) => {
    socket.on('message', (data: Buffer) => {
      const text = data.toString('latin1');
      if (!confirmed && text === 'subscribed') {
        confirmed = true;
        ready();
      } else handlers.onMessage(text);
    });
  });
  socket.on('error', (error) => handlers.onError(error.message));
  socket.on('close', (code) => {
    if (!isClosing()) handlers.onError(`closed by the server (${code}) during the run`);
  });
  if (subscribed) await withTimeout(isReady, `${name}: no "subscribed"`);
  const errors = new ErrorList();
  return {
    send: (text) => socket.send(text),
    close: async () => {
      await closeSocket(socket, name, errors);
      for (const error of errors.toArray()) handlers.onError(error);
    },
  };
}

async function openSocketIo(
  server: string,
  query: { topic: string; role: string },
  subscribed: boolean,
  handlers: EndpointHandlers,
  isClosing: () => boolean,
): Promise<Endpoint> {
  const socket: Socket = io(server, { transports: ['websocket'], query, forceNew: true, reconnection: false });
  socket.on('m', (text: string) => handlers.onMessage(text));
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.once(subscribed ? 'subscribed' : 'connect', () => resolve());
      socket.once('connect_error', reject);
    }),
    `socket.io ${query.role} of ${query.topic}: not connected`,
  );
  socket.on('disconnect', (reason) => {
    if (!isClosing()) handlers.onError(`disconnected (${reason}) during the run`);
  });
  return {
    send: (text) => socket.emit('m', text),
    close: async () => {
      socket.disconnect();
    },
  };
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${SUBSCRIBE_TIMEOUT_MS} ms`)), SUBSCRIBE_TIMEOUT_MS)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Runs `make` for each item, CONNECT_BATCH at a time. */
async function inBatches<T, R>(items: T[], make: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const settled: PromiseSettledResult<R>[] = [];
  for (let from = 0; from < items.length; from += CONNECT_BATCH) settled.push(...(await Promise.allSettled(items.slice(from, from + CONNECT_BATCH).map(make))));
  return settled;
}

interface Publisher {
  readonly index: number;
  readonly topic: number;
  endpoint?: Endpoint;
  sent: number;
  /** Slot seq % inFlight: deliveries message seq still has to make; 0 once it reached every subscriber. */
  readonly remaining: Int32Array;
  outstanding: number;
}

/** The monotonic clock in ns, as a Number: exact to the nanosecond for 104 days of uptime (2^53 ns), then to a few ns. */
const nowNs = () => Number(process.hrtime.bigint());

async function run(request: FanoutRequest): Promise<FanoutResult> {
  const errors = new ErrorList();
  const { servers, topics, subscribersPerTopic, inFlight } = request;
  const latencies: number[] = [];
  let deliveries = 0;
  let expected = 0;
  let delivered = 0;
  let orderViolations = 0;
  let measured = { seconds: 0, clientCpu: 0 };
  // A broken run does not wait for what is still out.
  const progress: PhasedRun = { phase: 'connecting', idle: () => allDrained() || errors.count > 0 };
  const isClosing = () => progress.phase === 'closing';
  const fail = (message: string) => {
    errors.add(message);
    if (progress.phase === 'warmup' || progress.phase === 'measure') progress.phase = 'drain';
    progress.onDrained?.();
  };

  const publishers: Publisher[] = Array.from({ length: servers.length * request.publishersPerServer }, (_, index) => ({
    index,
    topic: index % topics,
    sent: 0,
    remaining: new Int32Array(inFlight),
    outstanding: 0,
  }));
  const filler = 'x'.repeat(request.payloadBytes);

  const sendNext = (publisher: Publisher) => {
    const seq = publisher.sent++;
    publisher.remaining[seq % inFlight] = subscribersPerTopic;
    publisher.outstanding++;
    expected += subscribersPerTopic;
    const head = `${publisher.index} ${seq} ${nowNs()} `;
    publisher.endpoint!.send(head + filler.slice(0, Math.max(0, request.payloadBytes - head.length)));
  };
  const allDrained = () => publishers.every((publisher) => publisher.outstanding === 0);

  /** What subscriber of `topic` with `lastSeq` per publisher does with a delivery. */
  const deliver = (topic: number, lastSeq: Float64Array, name: string, text: string) => {
    const now = nowNs();
    const first = text.indexOf(' ');
    const second = text.indexOf(' ', first + 1);
    const third = text.indexOf(' ', second + 1);
    const publisher = publishers[Number(text.slice(0, first))];
    const seq = Number(text.slice(first + 1, second));
    if (publisher === undefined || !(seq >= 0) || third < 0 || text.length !== Math.max(third + 1, request.payloadBytes)) {
      fail(`${name}: unexpected message ${JSON.stringify(text.slice(0, 60))}`);
      return;
    }
    if (publisher.topic !== topic) {
      fail(`${name}: message of publisher ${publisher.index} (topic t${publisher.topic}) delivered on topic t${topic}`);
      return;
    }
    delivered++;
    if (seq <= lastSeq[publisher.index]) orderViolations++;
    else lastSeq[publisher.index] = seq;
    if (progress.phase === 'measure') {
      deliveries++;
      latencies.push((now - Number(text.slice(second + 1, third))) / 1e6);
    }
    const slot = seq % inFlight;
    if (--publisher.remaining[slot] !== 0) return;
    publisher.outstanding--;
    if (progress.phase === 'warmup' || progress.phase === 'measure') sendNext(publisher);
    else if (progress.phase === 'drain' && allDrained()) progress.onDrained?.();
  };

  const subscriberSpecs = Array.from({ length: topics * subscribersPerTopic }, (_, n) => ({ topic: Math.floor(n / subscribersPerTopic), server: n % servers.length, n }));
  const subscribers = await inBatches(subscriberSpecs, ({ topic, server, n }) => {
    const lastSeq = new Float64Array(publishers.length).fill(-1);
    const name = `subscriber ${n} (t${topic}, server ${server})`;
    return open(
      request.protocol,
      servers[server],
      { topic: `t${topic}`, role: 'sub' },
      { onMessage: (text) => deliver(topic, lastSeq, name, text), onError: (message) => fail(`${name}: ${message}`) },
      isClosing,
      name,
    );
  });
  const publisherEndpoints = await inBatches(publishers, (publisher) => {
    const server = Math.floor(publisher.index / request.publishersPerServer);
    const name = `publisher ${publisher.index} (t${publisher.topic}, server ${server})`;
    return open(
      request.protocol,
      servers[server],
      { topic: `t${publisher.topic}`, role: 'pub' },
      { onMessage: (text) => fail(`${name}: a publisher got a message: ${JSON.stringify(text.slice(0, 60))}`), onError: (message) => fail(`${name}: ${message}`) },
      isClosing,
      name,
    );
  });
  const endpoints: Endpoint[] = [];
  for (const [n, settled] of [...subscribers, ...publisherEndpoints].entries()) {
    if (settled.status === 'fulfilled') endpoints.push(settled.value);
    else errors.add(`connection ${n}: ${String(settled.reason)}`);
  }
  publisherEndpoints.forEach((settled, n) => (publishers[n].endpoint = settled.status === 'fulfilled' ? settled.value : undefined));

  if (errors.count === 0) {
    progress.phase = 'warmup';
    for (const publisher of publishers) for (let n = 0; n < inFlight; n++) sendNext(publisher);
    const { window, drained } = await warmUpMeasureDrain(progress, { ...request, drainTimeoutMs: DRAIN_TIMEOUT_MS });
    if (!drained) errors.add(`${expected - delivered} deliveries still missing ${DRAIN_TIMEOUT_MS} ms after the window closed`);
    measured = window;
  }

  progress.phase = 'closing';
  await Promise.all(endpoints.map((endpoint) => endpoint.close()));

  latencies.sort((a, b) => a - b);
  return {
    type: 'fanout-result',
    ...measured,
    deliveries,
    latency: {
      p50: quantileSorted(latencies, 0.5),
      p99: quantileSorted(latencies, 0.99),
      p999: quantileSorted(latencies, 0.999),
      max: latencies.length === 0 ? NaN : latencies[latencies.length - 1],
    },
    expected,
    delivered,
    orderViolations,
    errors: errors.toArray(),
  };
}

serveOrchestrator(run);
