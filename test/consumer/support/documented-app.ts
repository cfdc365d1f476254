/**
 * The runnable example app of a docs page, built from the page itself: a fresh app with the packed library,
 * the page's `file=` blocks written as files and its `sh run` blocks run, in page order. A page that shows one
 * app several ways (a Jest and a Vitest setup) has a section per way; the app takes the shared sections and one
 * of those. The docs stay the single source: nothing here keeps its own copy of a documented file.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type MarkdownBlock, readBlocks } from '../../docs/markdown-blocks.js';
import { createFreshApp, type FreshApp, packedTarball, peerDependencyVersions, repoVersion } from './packed-package.js';

export interface DocumentedAppOptions {
  /** The page, relative to the repository root. */
  page: string;
  /** The heading of the section that sets this app up. */
  section: string;
  /** Headings of the page's other set-up sections, whose blocks this app leaves out. */
  otherSections: string[];
}

interface DocumentedApp {
  app: FreshApp;
  /** How many tests the page's spec files declare (`it(...)` calls): what a run must report. */
  documentedTests: number;
}

/** The `sh run` commands install from npm's cache when they can, as the fresh app's own install does. */
const OFFLINE_FIRST = { npm_config_prefer_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' };

const SPEC_FILE = /\.spec\.ts$/;
const TEST_CALL = /^\s*it\(/gm;

function isAppBlock(block: MarkdownBlock): boolean {
  return block.file !== undefined || (block.language === 'sh' && block.words.includes('run'));
}

/** The page's blocks that make this app, after checking the sections named exist. */
function appBlocks(options: DocumentedAppOptions): MarkdownBlock[] {
  const blocks = readBlocks(options.page);
  for (const section of [options.section, ...options.otherSections]) {
    if (!blocks.some((block) => block.section === section && isAppBlock(block))) {
      throw new Error(`${options.page} has no section "${section}" with file= or sh run blocks: was it renamed?`);
    }
  }
  return blocks.filter((block) => isAppBlock(block) && !options.otherSections.includes(block.section));
}

/** A fresh app with the library and an HTTP platform installed, then the page's files and commands. */
async function createDocumentedApp(options: DocumentedAppOptions): Promise<DocumentedApp> {
  const blocks = appBlocks(options);
  const app = await createFreshApp({
    name: 'nest-websocket-routes-docs',
    dependencies: {
      'nest-websocket-routes': `file:${await packedTarball()}`,
      ...peerDependencyVersions(),
      '@nestjs/platform-express': repoVersion('@nestjs/platform-express'),
    },
  });
  try {
    for (const block of blocks) {
      if (block.file !== undefined) {
        await app.writeFile(block.file, `${block.code}\n`);
      } else {
        await app.run('sh', ['-e', '-c', block.code], { env: OFFLINE_FIRST });
      }
    }
  } catch (error) {
    await app.remove();
    throw error;
  }
  const specs = blocks.filter((block) => block.file !== undefined && SPEC_FILE.test(block.file));
  return { app, documentedTests: specs.reduce((count, block) => count + (block.code.match(TEST_CALL)?.length ?? 0), 0) };
}

/** What Jest's `--json` and Vitest's json reporter both write. */
interface TestRunResults {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
}

/** Runs the documented `npm test`, asking the runner for a JSON report (`reporterArgs` name `file`); rejects when it fails. */
async function runDocumentedTests(app: FreshApp, reporterArgs: (file: string) => string[]): Promise<TestRunResults> {
  const file = join(app.dir, 'test-results.json');
  await app.run('npm', ['test', '--', ...reporterArgs(file)]);
  return JSON.parse(await readFile(file, 'utf8')) as TestRunResults;
}

export interface DocumentedSetupOptions extends DocumentedAppOptions {
  /** Arguments after `npm test --` that make the runner write its JSON report to `file`. */
  reporterArgs: (file: string) => string[];
}

/**
 * The tests of one documented test setup: in the app the page builds, `npm test` passes and reports exactly the
 * page's tests, and `tsc` accepts the app with the page's tsconfig.json (test runners compile without checking types).
 */
export function describeDocumentedSetup(options: DocumentedSetupOptions): void {
  describe(`${options.page}: ${options.section}`, () => {
    let built: DocumentedApp | undefined;

    beforeAll(async () => {
      built = await createDocumentedApp(options);
    }, 600_000);

    afterAll(() => built?.app.remove());

    it('passes every documented test under npm test', async () => {
      const { app, documentedTests } = built!;
      const results = await runDocumentedTests(app, options.reporterArgs);
      expect(documentedTests).toBeGreaterThan(0);
      expect(results).toMatchObject({ numTotalTests: documentedTests, numPassedTests: documentedTests, numFailedTests: 0 });
    });

    it('type-checks with the documented tsconfig.json', async () => {
      await built!.app.run('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json']);
    });
  });
}
