/**
 * The library as users get it: `npm pack` of this checkout (its prepare script builds dist/), and fresh apps in the
 * OS temp dir that install the tarball the way a user's project would. Shared by the consumer tests.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout under test. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/** Set by the consumer Jest config's global setup: the run's directory for the tarball, shared by its spec files. */
const PACK_DIR_ENV = 'NEST_WS_ROUTES_PACK_DIR';

const COMMAND_TIMEOUT_MS = 240_000;

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Added to the (npm-free) environment. */
  env?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Runs a command to its end; rejects with its output when it fails, so a test failure shows why.
 * npm's own `npm_*` variables are dropped: a nested npm would otherwise take this repository's settings
 * (prefix, package name) when tests are started through `npm run`.
 */
export function runCommand(command: string, args: string[], cwd: string, options: RunOptions = {}): Promise<CommandOutput> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd, env: { ...env, ...options.env }, timeout: options.timeoutMs ?? COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) {
          reject(new Error(`\`${command} ${args.join(' ')}\` in ${cwd} failed: ${error.message}\n${stdout}\n${stderr}`));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

/** Packs this checkout into `destination` and returns the tarball's path (its prepare script builds dist/ first). */
export async function packLibrary(destination: string): Promise<string> {
  const { stdout } = await runCommand('npm', ['pack', '--json', '--pack-destination', destination], REPO_ROOT);
  const report = JSON.parse(stdout) as Array<{ filename: string }>;
  return join(destination, report[0].filename);
}

let packedInThisFile: Promise<string> | undefined;

/**
 * The tarball of this checkout, packed once per Jest run: into the run's directory from the global setup, where
 * a later spec file finds it; without that setup, into a directory of this spec file's own.
 */
export function packedTarball(): Promise<string> {
  packedInThisFile ??= (async () => {
    const shared = process.env[PACK_DIR_ENV];
    const destination = shared ?? (await mkdtemp(join(tmpdir(), 'nest-websocket-routes-pack-')));
    const existing = readdirSync(destination).find((file) => file.endsWith('.tgz'));
    return existing === undefined ? packLibrary(destination) : join(destination, existing);
  })();
  return packedInThisFile;
}

/** The version of a package in this repository's node_modules: what the lock file holds, so npm finds it in its cache. */
export function repoVersion(packageName: string): string {
  const manifest = join(REPO_ROOT, 'node_modules', packageName, 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

/** The library's required peer dependencies (not the optional ones), each at the version this repository tests with. */
export function peerDependencyVersions(): Record<string, string> {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    peerDependencies: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
  const required = Object.keys(manifest.peerDependencies).filter((name) => manifest.peerDependenciesMeta?.[name]?.optional !== true);
  return Object.fromEntries(required.map((name) => [name, repoVersion(name)]));
}

/**
 * What a fresh app installs to use the packed library: the tarball, the required peer dependencies, Express, and
 * `extra` (an optional peer such as redis).
 */
export async function packedAppDependencies(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    'nest-websocket-routes': `file:${await packedTarball()}`,
    ...peerDependencyVersions(),
    '@nestjs/platform-express': repoVersion('@nestjs/platform-express'),
    ...extra,
  };
}

export interface FreshAppOptions {
  /** Directory name prefix in the OS temp dir. */
  name: string;
  /** name -> version, range or `file:` path (e.g. `file:${await packedTarball()}`). */
  dependencies: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export interface FreshApp {
  readonly dir: string;
  /** Writes a file, relative to the app's directory, making its folders. */
  writeFile(relativePath: string, content: string): Promise<void>;
  /** Runs a command in the app's directory. */
  run(command: string, args: string[], options?: RunOptions): Promise<CommandOutput>;
  remove(): Promise<void>;
}

/**
 * A new ESM app (`"type": "module"`) in the OS temp dir, outside this repository, with its dependencies installed
 * by `npm install` (offline first from npm's cache).
 */
export async function createFreshApp(options: FreshAppOptions): Promise<FreshApp> {
  const dir = await mkdtemp(join(tmpdir(), `${options.name}-`));
  const app: FreshApp = {
    dir,
    writeFile: async (relativePath, content) => {
      const path = join(dir, relativePath);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, content);
    },
    run: (command, args, runOptions) => runCommand(command, args, dir, runOptions),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
  const manifest = {
    name: options.name,
    version: '0.0.0',
    private: true,
    type: 'module',
    dependencies: options.dependencies,
    devDependencies: options.devDependencies ?? {},
  };
  await app.writeFile('package.json', `${JSON.stringify(manifest, null, 2)}\n`);
  try {
    await app.run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund']);
  } catch (error) {
    await app.remove();
    throw error;
  }
  return app;
}

/** The strictest setup an ESM Nest app may have: NodeNext resolution, and the packages' own .d.ts files checked too. */
export const STRICT_NODENEXT_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023'],
    types: ['node'],
    strict: true,
    experimentalDecorators: true,
    emitDecoratorMetadata: true,
    // Off, so the packages' own .d.ts files are checked too, not only what the app uses of them.
    skipLibCheck: false,
    rootDir: 'src',
    outDir: 'dist',
  },
  include: ['src'],
};
