/**
 * Reads the fenced code blocks of the project's Markdown pages, with what the
 * doc conventions attach to them: the info string's language, `file=` and
 * `run` words, `program` with its `path=` and `protocol=`, and a
 * `<!-- ts-context ... -->` comment just above the fence.
 * A ```ts program path=/mine protocol=v1 block is a whole program: a
 * WebSocket echo server on `Number(process.env.PORT ?? 3000)` that
 * test/docs/programs.spec.ts runs and talks to on that path and subprotocol.
 * The snippet check, the program check and the consumer tests read the docs
 * through this, so the pages stay the single source of what they show.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MarkdownBlock {
  /** The page, relative to the repository root (`README.md`, `docs/testing.md`). */
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** Text of the `## ` heading the block is under ('' above the first one). */
  section: string;
  /** First word of the info string (`ts`, `sh`, `json`...). */
  language: string;
  /** The other words of the info string. */
  words: string[];
  /** The `file=` path of a block that is a file of the page's example app. */
  file: string | undefined;
  /** Set for a `program` block: a whole program, an echo server, to run on this path and subprotocol. */
  program: { path: string | undefined; protocol: string | undefined } | undefined;
  /** The block's lines between the fences, with the fence's indentation removed. */
  code: string;
  /** TypeScript from a `<!-- ts-context ... -->` comment on the line above the fence, or ''. */
  context: string;
}

export const repositoryRoot = join(import.meta.dirname, '..', '..');

/** README.md and every docs/*.md page, as paths relative to the repository root. */
export function documentationPages(): string[] {
  let docs: string[] = [];
  try {
    docs = readdirSync(join(repositoryRoot, 'docs'))
      .filter((name) => name.endsWith('.md'))
      .sort()
      .map((name) => `docs/${name}`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return ['README.md', ...docs];
}

const OPENING_FENCE = /^(\s*)(`{3,}|~{3,})\s*(.*)$/;
const SECTION_HEADING = /^##\s+(.*?)\s*$/;
const CONTEXT_END = '-->';

/** The ts-context comment ending on the line at `index`, or '' when that line is no such comment's end. */
function contextEndingAt(lines: string[], index: number): string {
  if (index < 0 || !lines[index].trim().endsWith(CONTEXT_END)) return '';
  for (let start = index; start >= 0; start--) {
    const opening = lines[start].trimStart();
    if (opening.startsWith('<!--')) {
      if (!opening.startsWith('<!-- ts-context')) return '';
      const text = lines.slice(start, index + 1).join('\n');
      return text.slice(text.indexOf('ts-context') + 'ts-context'.length, text.lastIndexOf(CONTEXT_END)).trim();
    }
  }
  return '';
}

/** The value of the info-string word `name=value`, if the block has one. */
function wordValue(words: string[], name: string): string | undefined {
  return words.find((word) => word.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** Every fenced block of one page, in page order. */
export function readBlocks(page: string): MarkdownBlock[] {
  const lines = readFileSync(join(repositoryRoot, page), 'utf8').split('\n');
  const blocks: MarkdownBlock[] = [];
  let section = '';
  for (let index = 0; index < lines.length; index++) {
    section = SECTION_HEADING.exec(lines[index])?.[1] ?? section;
    const opening = OPENING_FENCE.exec(lines[index]);
    if (!opening) continue;
    const [, indent, fence, info] = opening;
    const closing = lines.findIndex(
      (candidate, at) => at > index && candidate.trim().startsWith(fence) && candidate.trim().replaceAll(fence[0], '') === '',
    );
    const end = closing === -1 ? lines.length : closing;
    const [language = '', ...words] = info.trim().split(/\s+/).filter(Boolean);
    blocks.push({
      page,
      line: index + 1,
      section,
      language,
      words,
      file: wordValue(words, 'file'),
      program: words.includes('program') ? { path: wordValue(words, 'path'), protocol: wordValue(words, 'protocol') } : undefined,
      code: lines
        .slice(index + 1, end)
        .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line.trimStart()))
        .join('\n'),
      context: contextEndingAt(lines, index - 1),
    });
    index = end;
  }
  return blocks;
}

/** A block's place, as `page:line`, for test names and messages. */
export function blockPlace(block: MarkdownBlock): string {
  return `${block.page}:${block.line}`;
}
