/**
 * Every ```ts block of README.md and docs/*.md compiles under the project's
 * strict options, as its own module (with its ts-context, if any): one test a
 * block, named by page and line, so a failure points at the block to fix.
 */
import { blockPlace, documentationPages, readBlocks } from './markdown-blocks.js';
import { compileSnippets, type SnippetProblem } from './snippet-compiler.js';

const pages = documentationPages().map(readBlocks);
const snippets = pages.flat().filter((block) => block.language === 'ts');
let problems: ReturnType<typeof compileSnippets>;

function report(found: SnippetProblem[]): string {
  return found.map((problem) => `${problem.place}: ${problem.message}`).join('\n');
}

describe('TypeScript snippets in the docs', () => {
  beforeAll(() => {
    problems = compileSnippets(pages);
  }, 120_000);

  it('finds the snippets (README.md has some)', () => {
    expect(snippets.filter((block) => block.page === 'README.md').length).toBeGreaterThan(0);
  });

  it.each(snippets.map((block) => [blockPlace(block), block] as const))('%s compiles', (_place, block) => {
    expect(report(problems.get(block)!)).toBe('');
  });
});
