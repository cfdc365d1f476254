/** What each echo server module (ours.ts, ws.ts, gateway.ts) starts, and how the Nest ones listen on loopback. */
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';

export interface RunningServer {
  port: number;
  path: string;
  /** The same echo with permessage-deflate offered (the server's default deflate settings). */
  deflatePath: string;
  stop(): Promise<void>;
}

export async function listenOnLoopback(app: INestApplication, path: string, deflatePath: string): Promise<RunningServer> {
  await app.listen(0, '127.0.0.1');
  return { port: (app.getHttpServer().address() as AddressInfo).port, path, deflatePath, stop: () => app.close() };
}
