/**
 * The `ws` echo server: plain `ws` WebSocketServers, nothing else loaded; `/deflate` offers permessage-deflate
 * (ws's defaults). With BENCH_WS_NEST=1, @nestjs/core is loaded first, as in a Nest application that uses ws
 * directly: the same ws code on a heap the size of a Nest application's, which changes how V8 collects it.
 * `ws` uses `bufferutil` for masking when it can load it, as its README recommends; the report says whether it did.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { WebSocketServer } from 'ws';
import { listenHttpOnLoopback, terminateAndClose, type RunningServer } from './listen.js';

if (process.env.BENCH_WS_NEST) await import('@nestjs/core');

/**
 * Whether this process's `ws` masks with bufferutil. ws exposes nothing public for it, so this repeats what
 * ws/lib/buffer-util.js does: unless WS_NO_BUFFER_UTIL is set, require('bufferutil') from ws's own directory,
 * falling back to JavaScript when that throws (not installed, or no binary for this Node).
 */
function bufferutilStatus(): string {
  if (process.env.WS_NO_BUFFER_UTIL) return 'ws without bufferutil (WS_NO_BUFFER_UTIL=1)';
  const fromWs = createRequire(createRequire(import.meta.url).resolve('ws'));
  try {
    fromWs('bufferutil');
    const path = fromWs.resolve('bufferutil');
    const { version } = fromWs('bufferutil/package.json') as { version: string };
    return `ws with bufferutil ${version} (${path})`;
  } catch (error) {
    return `ws without bufferutil (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
  }
}

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
    about: bufferutilStatus(),
    stop: () => terminateAndClose(http, [...plain.clients, ...deflate.clients]),
  };
}
