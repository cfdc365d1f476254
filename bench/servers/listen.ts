/** What each server module (ours.ts, ws.ts, gateway.ts, cluster-*.ts) starts, and how they listen on loopback. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';

export interface RunningServer {
  port: number;
  path: string;
  /** The same echo with permessage-deflate offered (the server's default deflate settings). */
  deflatePath: string;
  /** Anything the report should say about how this server runs (the ws server: whether bufferutil loaded). */
  about?: string;
  stop(): Promise<void>;
}

export async function listenOnLoopback(app: INestApplication, path: string, deflatePath: string): Promise<RunningServer> {
  await app.listen(0, '127.0.0.1');
  return { port: (app.getHttpServer().address() as AddressInfo).port, path, deflatePath, stop: () => app.close() };
}

/** Listens on a free loopback port; resolves with the port. */
export async function listenHttpOnLoopback(http: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    http.once('listening', resolve);
    http.once('error', reject);
    http.listen(0, '127.0.0.1');
  });
  return (http.address() as AddressInfo).port;
}

/** Ends the `ws` clients at once and closes the HTTP server: what the plain `ws` servers' stop() does. */
export function terminateAndClose(http: Server, clients: Iterable<{ terminate(): void }>): Promise<void> {
  return new Promise<void>((resolve) => {
    for (const client of clients) client.terminate();
    http.close(() => resolve());
  });
}
