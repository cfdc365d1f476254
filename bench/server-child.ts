/** Benchmark child process: runs one echo server (the sample AppModule, or a plain `ws` server) on loopback. */
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { WebSocketServer } from 'ws';
import type { ServerCommand, ServerKind, ServerMessage } from './messages.js';

const kind = process.argv[2] as ServerKind;

function send(message: ServerMessage): void {
  process.send!(message);
}

async function startOurs(): Promise<() => Promise<void>> {
  const { AppModule } = await import('../sample/app.module.js');
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const port = (app.getHttpServer().address() as AddressInfo).port;
  send({ type: 'ready', port, path: '/echo', pid: process.pid });
  return () => app.close();
}

async function startWs(): Promise<() => Promise<void>> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.on('connection', (socket) => {
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
    socket.on('error', () => undefined);
  });
  const port = (server.address() as AddressInfo).port;
  send({ type: 'ready', port, path: '/', pid: process.pid });
  return () =>
    new Promise<void>((resolve) => {
      for (const client of server.clients) client.terminate();
      server.close(() => resolve());
    });
}

async function main(): Promise<void> {
  if (kind !== 'ours' && kind !== 'ws') throw new Error(`server-child: unknown server kind ${String(kind)}`);
  const stop = kind === 'ours' ? await startOurs() : await startWs();
  process.on('message', (command: ServerCommand) => {
    if (command.type === 'cpu') {
      const usage = process.cpuUsage();
      send({ type: 'cpu', micros: usage.user + usage.system, wallNanos: process.hrtime.bigint().toString() });
    } else if (command.type === 'stop') {
      // Stopping must not hang the run: exit regardless once closing had its chance.
      setTimeout(() => process.exit(0), 3_000).unref();
      stop().then(
        () => process.exit(0),
        () => process.exit(0),
      );
    }
  });
  // The orchestrator went away without saying stop: do not linger.
  process.on('disconnect', () => process.exit(0));
}

main().catch((error: unknown) => {
  console.error(`server-child ${kind}:`, error);
  process.exit(1);
});
