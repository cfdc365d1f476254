/**
 * The `ws` echo server: plain `ws` WebSocketServers, nothing else loaded; `/deflate` offers permessage-deflate
 * (ws's defaults). With BENCH_WS_NEST=1, @nestjs/core is loaded first, as in a Nest application that uses ws
 * directly: the same ws code on a heap the size of a Nest application's, which changes how V8 collects it.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { listenHttpOnLoopback, terminateAndClose, type RunningServer } from './listen.js';

if (process.env.BENCH_WS_NEST) await import('@nestjs/core');

function echoServer(perMessageDeflate: boolean): WebSocketServer {
  const server = new WebSocketServer({ noServer: true, perMessageDeflate });
  server.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('error', () => undefined);
  });
  return server;
}

export async function start(): Promise<RunningServer> {
  const plain = echoServer(false);
  const deflate = echoServer(true);
  const http = createServer();
  http.on('upgrade', (request, socket, head) => {
    const server = request.url === '/deflate' ? deflate : plain;
    server.handleUpgrade(request, socket, head, (client) => server.emit('connection', client, request));
  });
  return {
    port: await listenHttpOnLoopback(http),
    path: '/',
    deflatePath: '/deflate',
    stop: () => terminateAndClose(http, [...plain.clients, ...deflate.clients]),
  };
}
