/**
 * The test harness that runs a real redis-server (test/support/redis-server.ts): it answers, append-only data
 * survives a kill and restart while data without it does not, and remove() leaves no process and no dir behind.
 */
import { existsSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { RedisServer } from '../support/redis-server.js';

/** The error code of a connection attempt to the port, or 'connected'. */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe('RedisServer (test harness)', () => {
  const servers: RedisServer[] = [];
  const started = async (options?: { appendOnly?: boolean; port?: number }) => {
    const server = await RedisServer.start(options);
    servers.push(server);
    return server;
  };
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.remove()));
  });

  it('starts a server that answers commands over RESP', async () => {
    const server = await started();
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    expect(await server.command('PING')).toBe('+PONG\r\n');
    expect(await server.command('SET', 'greeting', 'héllo wörld')).toBe('+OK\r\n');
    expect(await server.command('GET', 'greeting')).toBe('$13\r\nhéllo wörld\r\n');
    expect(await server.command('RPUSH', 'list', 'a', '')).toBe(':2\r\n');
    expect(await server.command('LRANGE', 'list', '0', '-1')).toBe('*2\r\n$1\r\na\r\n$0\r\n\r\n');
    expect(await server.command('NO-SUCH-COMMAND')).toMatch(/^-ERR unknown command/);
  });

  it('keeps append-only data across kill() and restart() on the same port', async () => {
    const server = await started({ appendOnly: true });
    const port = server.port;
    expect(await server.command('SET', 'k', 'v')).toBe('+OK\r\n');
    await server.kill();
    expect(await connectOutcome(port)).toBe('ECONNREFUSED');

    await server.restart();
    expect(server.port).toBe(port);
    expect(await server.command('GET', 'k')).toBe('$1\r\nv\r\n');
  });

  it('loses the data of a server without append-only across a restart', async () => {
    const server = await started();
    expect(await server.command('SET', 'k', 'v')).toBe('+OK\r\n');
    await server.kill();
    await server.restart();
    expect(await server.command('GET', 'k')).toBe('$-1\r\n');
  });

  it('restarts after stop() too, keeping append-only data', async () => {
    const server = await started({ appendOnly: true });
    expect(await server.command('SET', 'k', 'kept')).toBe('+OK\r\n');
    await server.stop();
    expect(await connectOutcome(server.port)).toBe('ECONNREFUSED');
    await server.restart();
    expect(await server.command('GET', 'k')).toBe('$4\r\nkept\r\n');
  });

  it('allows DEBUG SLEEP, which tests use to make the server unresponsive', async () => {
    const server = await started();
    expect(await server.command('DEBUG', 'SLEEP', '0')).toBe('+OK\r\n');
  });

  it('remove() leaves no process listening and no temp dir', async () => {
    const server = await RedisServer.start({ appendOnly: true });
    expect(await server.command('SET', 'k', 'v')).toBe('+OK\r\n');
    expect(existsSync(server.dir)).toBe(true);
    await server.remove();
    expect(await connectOutcome(server.port)).toBe('ECONNREFUSED');
    expect(existsSync(server.dir)).toBe(false);
  });

  it("says what redis-server printed when it cannot start (its port taken)", async () => {
    // Holds the port only: connections are dropped, as a socket never read would keep close() waiting.
    const taken: Server = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      await expect(RedisServer.start({ port })).rejects.toThrow(new RegExp(`port ${port} ended before accepting connections.*Address already in use`));
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it("says to install Debian's redis-server package when it is not on PATH", async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(RedisServer.start()).rejects.toThrow("install Debian's redis-server package (`.ci/run` does it)");
    } finally {
      process.env.PATH = path;
    }
  });
});
