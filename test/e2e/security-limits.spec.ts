import 'reflect-metadata';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { Controller, Injectable, UseGuards, type CanActivate } from '@nestjs/common';
import { WebSocketRoute, WebSocketsModule, WebSocketUpgrade, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { deferred, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { initApp, PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { RawClient } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

let gate = deferred();
let deciding = 0;

@Injectable()
class GateGuard implements CanActivate {
  async canActivate(): Promise<boolean> {
    deciding++;
    await gate.promise;
    return true;
  }
}

@Controller()
class LimitedController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('partner', { allowedOrigins: ['https://partner.example'] })
  async partner(session: DefaultWebSocketServerSession) {
    await session.send('partner');
  }

  @WebSocketRoute('solo', { maxConnections: 1 })
  async solo(session: DefaultWebSocketServerSession) {
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('gated')
  @UseGuards(GateGuard)
  async gated(session: DefaultWebSocketServerSession) {
    gatedRuns++;
    for await (const frame of session.incoming) await session.send(frame);
  }

  @WebSocketRoute('gated-briefly', { handshakeTimeout: 100 })
  @UseGuards(GateGuard)
  async gatedBriefly(session: DefaultWebSocketServerSession) {
    gatedRuns++;
    await session.send('too late');
  }
}

let gatedRuns = 0;

describe.each(PLATFORMS)('on %s', (platform) => {
  const clients = new ClientTracker();
  afterEach(() => clients.dropAll());

  const status = async (t: TestApp, path: string, headers: Record<string, string | undefined> = {}) => {
    const { client, response } = await RawClient.open(t.port, path, headers);
    clients.track(client);
    if (response.status !== 101) expect(await client.waitForEnd()).toBe(true);
    return response.status;
  };
  const echoes = async (client: WsClient, text: string) => {
    client.ws.send(text);
    return (await client.nextText()) === text;
  };

  describe('origins, by default the server’s own', () => {
    let t: TestApp;
    beforeAll(async () => (t = await startApp([LimitedController], {}, [], { platform })));
    afterAll(() => t.close());

    it('accepts a page of the same origin and a client that sends no Origin', async () => {
      expect(await status(t, '/echo', { Origin: `http://127.0.0.1:${t.port}` })).toBe(101);
      expect(await status(t, '/echo')).toBe(101);
    });

    it('refuses a page of another origin with 403 before the upgrade', async () => {
      expect(await status(t, '/echo', { Origin: 'https://evil.example' })).toBe(403);
      expect(await status(t, '/echo', { Origin: `http://localhost:${t.port}` })).toBe(403);
      expect(await status(t, '/echo', { Origin: 'null' })).toBe(403);
    });

    it('lets a route name its own origins instead', async () => {
      expect(await status(t, '/partner', { Origin: 'https://partner.example' })).toBe(101);
      expect(await status(t, '/partner', { Origin: `http://127.0.0.1:${t.port}` })).toBe(403);
    });
  });

  describe('origins from the module', () => {
    let t: TestApp;
    beforeAll(
      async () =>
        (t = await startApp([LimitedController], { allowedOrigins: ['https://*.example.com', /^http:\/\/localhost:\d+$/] }, [], { platform })),
    );
    afterAll(() => t.close());

    it('takes listed origins and patterns, and refuses the rest, the server’s own included unless listed', async () => {
      expect(await status(t, '/echo', { Origin: 'https://app.example.com' })).toBe(101);
      expect(await status(t, '/echo', { Origin: 'http://localhost:1234' })).toBe(101);
      expect(await status(t, '/echo', { Origin: 'https://example.com' })).toBe(403);
      expect(await status(t, '/echo', { Origin: `http://127.0.0.1:${t.port}` })).toBe(403);
      expect(await status(t, '/echo')).toBe(101);
    });
  });

  describe('maxConnections', () => {
    let t: TestApp;
    beforeEach(async () => {
      gate = deferred();
      deciding = 0;
      t = await startApp([LimitedController], { maxConnections: 3 }, [], { platform });
    });
    afterEach(async () => {
      gate.resolve();
      clients.dropAll();
      await t.close();
    });

    it('answers 503 past the module’s limit, counting every route, and takes new sessions once one ended', async () => {
      const open = [];
      for (const path of ['/echo', '/echo', '/solo']) open.push(clients.track(await WsClient.connect(t.url(path))));
      expect(await status(t, '/echo')).toBe(503);
      for (const client of open) expect(await echoes(client, 'still here')).toBe(true);
      open[0].ws.close();
      await open[0].closed;
      const next = clients.track(await WsClient.connect(t.url('/echo')));
      expect(await echoes(next, 'in')).toBe(true);
    });

    it('answers 503 past a route’s own limit while other routes still take sessions', async () => {
      const first = clients.track(await WsClient.connect(t.url('/solo')));
      expect(await status(t, '/solo')).toBe(503);
      const other = clients.track(await WsClient.connect(t.url('/echo')));
      expect(await echoes(other, 'fine')).toBe(true);
      expect(await echoes(first, 'fine too')).toBe(true);
      first.ws.close();
      await first.closed;
      expect(await status(t, '/solo')).toBe(101);
    });

    it('counts upgrades whose guards are still deciding', async () => {
      const waiting = [1, 2, 3].map(() => RawClient.open(t.port, '/gated'));
      await new Promise<void>((resolve) => {
        const poll = () => (deciding === 3 ? resolve() : setTimeout(poll, 5));
        poll();
      });
      expect(await status(t, '/echo')).toBe(503);
      gate.resolve();
      for (const result of await Promise.all(waiting)) {
        clients.track(result.client);
        expect(result.response.status).toBe(101);
      }
    });
  });
});

describe.each(PLATFORMS)('handshakeTimeout on %s', (platform) => {
  const clients = new ClientTracker();
  let t: TestApp;
  beforeEach(async () => {
    gate = deferred();
    deciding = 0;
    gatedRuns = 0;
    t = await startApp([LimitedController], { handshakeTimeout: 300, maxConnections: 1 }, [], { platform });
  });
  afterEach(async () => {
    gate.resolve();
    clients.dropAll();
    await t.close();
  });

  const refusedWhileDeciding = async (path: string) => {
    const { client, response } = await RawClient.open(t.port, path);
    clients.track(client);
    expect(response.status).toBe(503);
    expect(response.body).toMatch(/not decided within/);
    expect(await client.waitForEnd()).toBe(true);
  };

  it('answers 503 when guards do not decide in time, never runs the method, and frees the connection slot once they settle', async () => {
    await refusedWhileDeciding('/gated');
    // The guard is still pending (maxConnections is 1): its slot stays taken, so hung guards cannot pile up.
    const meanwhile = await RawClient.open(t.port, '/echo');
    clients.track(meanwhile.client);
    expect(meanwhile.response.status).toBe(503);
    expect(meanwhile.response.body).toMatch(/Too many connections/);
    gate.resolve();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(gatedRuns).toBe(0);
    const client = clients.track(await WsClient.connect(t.url('/echo')));
    client.ws.send('slot is free');
    expect(await client.nextText()).toBe('slot is free');
  });

  it('takes a route’s own handshakeTimeout over the module’s', async () => {
    await t.close();
    t = await startApp([LimitedController], { handshakeTimeout: 60_000 }, [], { platform });
    // The module's minute would outlast the test; only the route's 100 ms can answer in time.
    await within(refusedWhileDeciding('/gated-briefly'), 10_000, 'the route’s handshakeTimeout');
    expect(gatedRuns).toBe(0);
  });
});

describe('WebSocketUpgrade origins', () => {
  let server: Server;
  let port: number;
  const clients = new ClientTracker();

  beforeAll(async () => {
    const sameOrigin = new WebSocketUpgrade({}, async (session) => session.send(new Uint8Array([1])));
    const listed = new WebSocketUpgrade({ allowedOrigins: ['https://app.example'] }, async (session) => session.send(new Uint8Array([2])));
    server = createServer();
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      void (request.url === '/listed' ? listed : sameOrigin).handle(request, socket, head);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => clients.dropAll());
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const status = async (path: string, origin?: string) => {
    const { client, response } = await RawClient.open(port, path, { Origin: origin });
    clients.track(client);
    return response.status;
  };

  it('refuses other origins by default, and takes listed ones', async () => {
    expect(await status('/same', `http://127.0.0.1:${port}`)).toBe(101);
    expect(await status('/same', 'https://evil.example')).toBe(403);
    expect(await status('/listed', 'https://app.example')).toBe(101);
    expect(await status('/listed', `http://127.0.0.1:${port}`)).toBe(403);
  });
});

describe('invalid security options fail at startup, naming the option', () => {
  it.each([
    [{ allowedOrigins: ['example.com'] }, 'allowedOrigins'],
    [{ maxConnections: 0 }, 'maxConnections'],
    [{ maxConnections: 1.5 }, 'maxConnections'],
    [{ handshakeTimeout: 0 }, 'handshakeTimeout'],
  ])('%p', async (options, name) => {
    await expect(initApp([LimitedController], [WebSocketsModule.forRoot(options as never)])).rejects.toThrow(name);
  });

  it('names the route for a route option', async () => {
    @Controller()
    class BadRoute {
      @WebSocketRoute('bad', { maxConnections: -1 })
      bad() {}
    }
    await expect(initApp([BadRoute])).rejects.toThrow(/BadRoute\.bad: .*maxConnections/);
  });
});
