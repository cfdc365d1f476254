/**
 * The `cluster-socketio` fan-out server of the cluster benchmark (cluster.bench.ts): socket.io 4 with
 * `@socket.io/redis-adapter` (createAdapter on two node-redis clients, as the Nest docs' RedisIoAdapter does),
 * the same fan-out as cluster-ours.ts in socket.io's terms: a client connecting with query { topic, role: 'sub' }
 * joins the room T and gets a `subscribed` event; each `m` event a client emits goes to the room with
 * `socket.to(T).emit('m', text)`, which leaves the sender out as our `except` does.
 */
import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { listenHttpOnLoopback, type RunningServer } from './listen.js';

export async function start(redisUrl: string): Promise<RunningServer> {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  // WebSocket only, as the benchmark's clients connect: no long-polling upgrade dance.
  const io = new Server(http, { adapter: createAdapter(pub, sub), transports: ['websocket'], serveClient: false });
  io.on('connection', (socket) => {
    const { topic, role } = socket.handshake.query as Record<string, string>;
    if (role === 'sub') {
      socket.join(topic);
      socket.emit('subscribed');
    }
    socket.on('m', (text: string) => socket.to(topic).emit('m', text));
  });
  return {
    port: await listenHttpOnLoopback(http),
    path: '/',
    deflatePath: '/',
    stop: async () => {
      await io.close();
      await Promise.all([pub.close(), sub.close()]);
    },
  };
}
