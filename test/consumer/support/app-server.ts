/**
 * A fresh app's server run as a child process: `node <entry>` in the app's directory, with extra environment
 * variables; resolves with the port it printed as `listening on <port>`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { FreshApp } from './packed-package.js';

const STARTUP_TIMEOUT_MS = 30_000;

export function startServer(app: FreshApp, entry = 'dist/main.js', env: Record<string, string> = {}): Promise<{ server: ChildProcess; port: number }> {
  const server = spawn(process.execPath, [entry], { cwd: app.dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let output = '';
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      server.kill();
      reject(new Error(`${why}; its output:\n${output}`));
    };
    const timer = setTimeout(() => fail('the app printed no port in time'), STARTUP_TIMEOUT_MS);
    server.on('exit', (code) => fail(`the app exited with ${code}`));
    server.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    server.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const port = /listening on (\d+)/.exec(output)?.[1];
      if (port === undefined) return;
      clearTimeout(timer);
      server.removeAllListeners('exit');
      resolve({ server, port: Number(port) });
    });
  });
}
