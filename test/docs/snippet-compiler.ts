/**
 * Type-checks the docs' TypeScript blocks with the repository's TypeScript
 * compiler, as a user's project would: each block is its own ES module under
 * the project's compiler options, `nest-websocket-routes` resolves to lib/,
 * everything else to the repo's node_modules. One program holds every block
 * as a virtual file, so the library and Nest's types are checked once.
 */
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { type MarkdownBlock, repositoryRoot } from './markdown-blocks.js';

export interface SnippetProblem {
  /** `page:line` of the Markdown line the problem is on (the fence's line when it is in the ts-context). */
  place: string;
  message: string;
}

/** Where the virtual files live: under the repository, so node_modules and package.json "type" apply as to a real file. */
const VIRTUAL_ROOT = join(repositoryRoot, '.doc-snippets');

/**
 * The project's options, except the two that would flag a snippet for being
 * a fragment: a class a page declares and never uses is not an error in a
 * user's project (Nest's generated tsconfig does not set these).
 */
export function compilerOptions(): ts.CompilerOptions {
  const configPath = join(repositoryRoot, 'tsconfig.json');
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
      throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    },
  });
  if (!config) throw new Error(`cannot read ${configPath}`);
  return {
    ...config.options,
    noUnusedLocals: false,
    noUnusedParameters: false,
    declaration: false,
    sourceMap: false,
    noEmit: true,
    moduleDetection: ts.ModuleDetectionKind.Force,
  };
}

/** A page's `file=` blocks sit at their own paths in one directory per page, so they can import each other. */
function virtualPath(block: MarkdownBlock): string {
  const pageDirectory = join(VIRTUAL_ROOT, block.page.replaceAll('/', '__'));
  return block.file ? join(pageDirectory, block.file) : join(pageDirectory, `line-${block.line}.ts`);
}

interface VirtualFile {
  block: MarkdownBlock;
  text: string;
  /** Lines the ts-context puts before the block. */
  contextLines: number;
  /** Packages the block may import although the repo does not have them: its page tells the user to install them. */
  installedByPage: Set<string>;
}

/** The directories from the virtual root down to the file's own. */
function ancestorsBelowRoot(path: string): string[] {
  const directories: string[] = [];
  for (let directory = dirname(path); directory.startsWith(VIRTUAL_ROOT); directory = dirname(directory)) directories.push(directory);
  return directories;
}

/** Package names a page's `sh` blocks install with npm (a test runner, a compiler plugin: not the repo's). */
function packagesInstalledBy(blocks: MarkdownBlock[]): Set<string> {
  const names = new Set<string>();
  for (const block of blocks) {
    if (block.language !== 'sh') continue;
    for (const command of block.code.split('\n')) {
      const words = command.trim().split(/\s+/);
      if (words[0] !== 'npm' || !['install', 'i', 'add'].includes(words[1])) continue;
      for (const word of words.slice(2)) {
        if (word.startsWith('-')) continue;
        names.add(word.replace(/(?<=.)@[^/]*$/, ''));
      }
    }
  }
  return names;
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The ts blocks of the given pages type-checked together; problems by the block they belong to. */
export function compileSnippets(pagesBlocks: MarkdownBlock[][]): Map<MarkdownBlock, SnippetProblem[]> {
  const files = new Map<string, VirtualFile>();
  for (const blocks of pagesBlocks) {
    const installedByPage = packagesInstalledBy(blocks);
    for (const block of blocks.filter((candidate) => candidate.language === 'ts')) {
      const context = block.context ? `${block.context}\n` : '';
      files.set(virtualPath(block), {
        block,
        text: context + block.code,
        contextLines: context ? context.split('\n').length - 1 : 0,
        installedByPage,
      });
    }
  }

  const options = compilerOptions();
  const host = ts.createCompilerHost(options);
  const readRealFile = host.readFile.bind(host);
  const realFileExists = host.fileExists.bind(host);
  host.fileExists = (path) => files.has(path) || realFileExists(path);
  // Module resolution looks for a file only in a directory that exists: the virtual ones do.
  const virtualDirectories = new Set([...files.keys()].flatMap((path) => ancestorsBelowRoot(path)));
  const realDirectoryExists = host.directoryExists?.bind(host) ?? ts.sys.directoryExists;
  host.directoryExists = (path) => virtualDirectories.has(path) || realDirectoryExists(path);
  host.readFile = (path) => files.get(path)?.text ?? readRealFile(path);
  const getRealSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (path, languageVersion, onError, shouldCreate) => {
    const file = files.get(path);
    return file ? ts.createSourceFile(path, file.text, languageVersion, true) : getRealSourceFile(path, languageVersion, onError, shouldCreate);
  };
  const program = ts.createProgram([...files.keys()], options, host);

  const problems = new Map<MarkdownBlock, SnippetProblem[]>();
  for (const [path, file] of files) {
    const sourceFile = program.getSourceFile(path)!;
    const diagnostics = [...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)];
    problems.set(
      file.block,
      diagnostics.filter((diagnostic) => !isPageInstalledPackage(diagnostic, sourceFile, file)).map((diagnostic) => toProblem(diagnostic, file)),
    );
  }
  return problems;
}

const CANNOT_FIND_MODULE = 2307;

/**
 * An import of a package the page installs and the repo does not (Vitest's config): its names are `any` here,
 * the rest of the block is still checked, and the consumer tests run the page's example app with the package.
 */
function isPageInstalledPackage(diagnostic: ts.Diagnostic, sourceFile: ts.SourceFile, file: VirtualFile): boolean {
  if (diagnostic.code !== CANNOT_FIND_MODULE || diagnostic.start === undefined) return false;
  const specifier = sourceFile.text.slice(diagnostic.start, diagnostic.start + (diagnostic.length ?? 0)).replace(/^['"]|['"]$/g, '');
  return file.installedByPage.has(packageOf(specifier));
}

function toProblem(diagnostic: ts.Diagnostic, file: VirtualFile): SnippetProblem {
  const message = `TS${diagnostic.code}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`;
  if (!diagnostic.file || diagnostic.start === undefined) return { place: `${file.block.page}:${file.block.line}`, message };
  const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
  const blockLine = line - file.contextLines;
  const markdownLine = blockLine < 0 ? file.block.line : file.block.line + 1 + blockLine;
  const where = blockLine < 0 ? ' (in the ts-context)' : `:${character + 1}`;
  return { place: `${file.block.page}:${markdownLine}${where}`, message };
}
