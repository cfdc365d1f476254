/** The `ws` echo server: plain `ws` WebSocketServers, nothing else loaded; `/deflate` offers permessage-deflate (ws's defaults). */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { RunningServer } from './listen.js';

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
  await new Promise<void>((resolve, reject) => {
    http.once('listening', resolve);
    http.once('error', reject);
    http.listen(0, '127.0.0.1');
  });
  return {
    port: (http.address() as AddressInfo).port,
    path: '/',
    deflatePath: '/deflate',
    stop: () =>
      new Promise<void>((resolve) => {
        for (const client of [...plain.clients, ...deflate.clients]) client.terminate();
        http.close(() => resolve());
      }),
  };
}
