/**
 * The package users install: `npm pack` of this checkout, installed into a fresh app outside the repository with
 * only the peer dependencies and an HTTP platform, compiled against the installed types (strict, NodeNext) and run;
 * and the same library installed from git, which npm builds with the prepare script.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { startServer } from './support/app-server.js';
import { createFreshApp, packedAppDependencies, peerDependencyVersions, REPO_ROOT, repoVersion, STRICT_NODENEXT_TSCONFIG, type FreshApp } from './support/packed-package.js';
import { WsClient } from '../support/ws-client.js';

const APP_MODULE = `
import { Controller, Module } from '@nestjs/common';
import { WebSocketRoute, WebSocketsModule, WsSession, type DefaultWebSocketServerSession } from 'nest-websocket-routes';

@Controller()
class EchoController {
  @WebSocketRoute('echo')
  async echo(@WsSession() session: DefaultWebSocketServerSession): Promise<void> {
    for await (const frame of session.incoming) await session.send(frame);
  }
}

@Module({ imports: [WebSocketsModule.forRoot()], controllers: [EchoController] })
export class AppModule {}
`;

const MAIN = `
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { AppModule } from './app.module.js';

const app = await NestFactory.create(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
console.log(\`listening on \${(app.getHttpServer().address() as AddressInfo).port}\`);
`;

const TESTING_CHECK = `
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { connectWebSocket, WebSocketHandshakeError, type WebSocketTestClient } from 'nest-websocket-routes/testing';
import { AppModule } from './app.module.js';

const app = await NestFactory.create(AppModule, { logger: false });
const client: WebSocketTestClient = await connectWebSocket(app, '/echo');
client.send('through the testing entry point');
const echoed = await client.receiveText();
const close = await client.close(1000);
const refusal = await connectWebSocket(app, '/nowhere').catch((error: unknown) => error);
await app.close();
console.log(JSON.stringify({
  echoed,
  closeCode: close.code,
  refusedStatus: refusal instanceof WebSocketHandshakeError ? refusal.status : String(refusal),
}));
`;

// Never run: compiles only if the installed declarations are the real types (an \`any\` would make each directive unused).
const TYPES_CHECK = `
import type { DefaultWebSocketServerSession } from 'nest-websocket-routes';
import type { WebSocketTestClient } from 'nest-websocket-routes/testing';

export async function misuse(session: DefaultWebSocketServerSession, client: WebSocketTestClient): Promise<void> {
  // @ts-expect-error send takes text, bytes or a Frame
  await session.send(42);
  // @ts-expect-error receiveText resolves to a string
  const length: number = await client.receiveText();
  console.log(length);
}
`;

/** Every file under a directory, as paths relative to it. */
function filesUnder(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(root, join(dir, entry.name)) : [relative(root, join(dir, entry.name))],
  );
}

describe('the packed library in a fresh app', () => {
  let app: FreshApp;
  let installed: string;

  beforeAll(async () => {
    app = await createFreshApp({
      name: 'nest-websocket-routes-consumer',
      dependencies: await packedAppDependencies(),
      devDependencies: { '@types/node': repoVersion('@types/node') },
    });
    installed = join(app.dir, 'node_modules', 'nest-websocket-routes');
    await app.writeFile('tsconfig.json', JSON.stringify(STRICT_NODENEXT_TSCONFIG, null, 2));
    await app.writeFile('src/app.module.ts', APP_MODULE);
    await app.writeFile('src/main.ts', MAIN);
    await app.writeFile('src/testing-check.ts', TESTING_CHECK);
    await app.writeFile('src/types-check.ts', TYPES_CHECK);
  });

  afterAll(async () => {
    await app?.remove();
  });

  it('holds the built library with types for every entry point, and no tests, sources or build output', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
    };
    for (const entry of ['.', './testing', './redis']) {
      expect(existsSync(join(installed, manifest.exports[entry].types))).toBe(true);
      expect(existsSync(join(installed, manifest.exports[entry].default))).toBe(true);
    }
    const files = filesUnder(installed);
    expect(files).toEqual(
      expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/testing/index.js', 'dist/testing/index.d.ts', 'dist/redis/index.js', 'dist/redis/index.d.ts']),
    );
    const outsideDist = files.filter((file) => !file.startsWith('dist/'));
    expect(outsideDist.sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
    expect(files.filter((file) => /\.ts$/.test(file) && !file.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((file) => /spec|test\/|^build\/|bench|sample/.test(file.replace('dist/testing/', '')))).toEqual([]);
  });

  it('ships every source map with the sources it points at', () => {
    const maps = filesUnder(installed).filter((file) => file.endsWith('.map'));
    expect(maps.length).toBeGreaterThan(0);
    const missing = maps.flatMap((file) => {
      const map = JSON.parse(readFileSync(join(installed, file), 'utf8')) as { sources: string[]; sourcesContent?: Array<string | null> };
      return map.sources.filter(
        (source, index) =>
          typeof map.sourcesContent?.[index] !== 'string' && !existsSync(join(installed, dirname(file), source)),
      ).map((source) => `${file} -> ${source}`);
    });
    expect(missing).toEqual([]);
  });

  it("compiles a strict NodeNext app against the installed package's types", async () => {
    await app.run(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
    expect(existsSync(join(app.dir, 'dist', 'main.js'))).toBe(true);
  });

  /** What the app's server echoes of `message` on its route. */
  async function echoedByApp(message: string): Promise<string> {
    const { server, port } = await startServer(app);
    const exited = new Promise((resolve) => server.once('exit', resolve));
    try {
      const client = await WsClient.connect(`ws://127.0.0.1:${port}/echo`);
      client.ws.send(message);
      const echoed = (await client.next()).data.toString();
      client.ws.close(1000);
      expect((await client.closed).code).toBe(1000);
      return echoed;
    } finally {
      server.kill();
      await exited;
    }
  }

  /** Which masking the installed library picked in a process of the app (an internal module, by file). */
  async function maskingInApp(): Promise<string> {
    const masking = pathToFileURL(join(installed, 'dist', 'protocol', 'masking.js')).href;
    const program = `import { maskingImplementation } from ${JSON.stringify(masking)}; console.log(maskingImplementation());`;
    return (await app.run(process.execPath, ['--input-type=module', '--eval', program])).stdout.trim();
  }

  it('serves a route: a ws client gets its message echoed, without the optional redis installed', async () => {
    // The app runs without redis: the main entry point never loads the Redis broker.
    expect(existsSync(join(app.dir, 'node_modules', 'redis'))).toBe(false);
    expect(await echoedByApp('hello from a fresh app')).toBe('hello from a fresh app');
  });

  it('runs nest-websocket-routes/testing from the package against the same route', async () => {
    const { stdout } = await app.run(process.execPath, ['dist/testing-check.js']);
    expect(JSON.parse(stdout)).toEqual({ echoed: 'through the testing entry point', closeCode: 1000, refusedStatus: 404 });
  });

  // Last: it removes bufferutil from the app.
  it('masks with bufferutil, installed as an optional dependency, and in JavaScript after --omit=optional, echoing either way', async () => {
    // Longer than the length from which bufferutil takes over.
    const long = 'a message masked either way; '.repeat(40);
    expect(existsSync(join(app.dir, 'node_modules', 'bufferutil'))).toBe(true);
    expect(await maskingInApp()).toBe('bufferutil');
    expect(await echoedByApp(long)).toBe(long);
    await app.run('npm', ['install', '--omit=optional', '--prefer-offline', '--no-audit', '--no-fund']);
    expect(existsSync(join(app.dir, 'node_modules', 'bufferutil'))).toBe(false);
    expect(await maskingInApp()).toBe('javascript');
    expect(await echoedByApp(long)).toBe(long);
  });
});

describe('the library installed from git', () => {
  let app: FreshApp | undefined;

  afterAll(async () => {
    await app?.remove();
  });

  it('builds on install (prepare) and imports from both entry points', async () => {
    // npm clones the repository's HEAD, installs its devDependencies there and runs its prepare script.
    app = await createFreshApp({
      name: 'nest-websocket-routes-git-consumer',
      dependencies: { 'nest-websocket-routes': `git+file://${REPO_ROOT}`, ...peerDependencyVersions() },
    });
    const installed = join(app.dir, 'node_modules', 'nest-websocket-routes');
    expect(existsSync(join(installed, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'testing', 'index.d.ts'))).toBe(true);
    const imports = `
      import 'reflect-metadata';
      const main = await import('nest-websocket-routes');
      const testing = await import('nest-websocket-routes/testing');
      console.log(JSON.stringify([typeof main.WebSocketsModule.forRoot, typeof testing.connectWebSocket]));`;
    const { stdout } = await app.run(process.execPath, ['--input-type=module', '--eval', imports]);
    expect(JSON.parse(stdout)).toEqual(['function', 'function']);
  });
});
