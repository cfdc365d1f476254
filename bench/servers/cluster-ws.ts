/**
 * The `cluster-ws` fan-out server of the cluster benchmark's in-process scenario (cluster.bench.ts): a plain
 * `ws` WebSocketServer, the reference for our in-process `publish`. Subscribers (`?role=sub`) get `subscribed`;
 * each message a client sends goes to every other open client by a loop over `wss.clients`, the usual `ws`
 * broadcast: the in-process scenario has one topic and one publisher, so those are its subscribers.
 */
import { createServer } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { listenHttpOnLoopback, terminateAndClose, type RunningServer } from './listen.js';

export async function start(): Promise<RunningServer> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, path: '/fanout', perMessageDeflate: false });
  wss.on('connection', (socket, request) => {
    socket.on('error', () => undefined);
    if (new URL(request.url ?? '/', 'http://x').searchParams.get('role') === 'sub') socket.send('subscribed');
    socket.on('message', (data, isBinary) => {
      for (const client of wss.clients) {
        if (client !== socket && client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
      }
    });
  });
  return {
    port: await listenHttpOnLoopback(http),
    path: '/fanout',
    deflatePath: '/fanout',
    stop: () => terminateAndClose(http, wss.clients),
  };
}
