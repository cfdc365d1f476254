/** The chat page at `/`: plain HTML, JS and CSS from `sample/public/`, no build step. */
import { Controller, Get, Header } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/**
 * Run from source (ts-jest) this file sits in `sample/`, beside `public/`; compiled, it sits in
 * `build/sample/`, and the files are still in the repository's `sample/public/` (tsc does not copy them).
 */
const candidates = [join(here, 'public'), join(here, '..', '..', 'sample', 'public')];
const PUBLIC_DIR = candidates.find((dir) => existsSync(join(dir, 'index.html')));
if (PUBLIC_DIR === undefined) throw new Error(`The chat page is missing: no index.html in ${candidates.join(' or ')}`);

const read = (file: string): Promise<string> => readFile(join(PUBLIC_DIR, file), 'utf8');

@Controller()
export class PageController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  index(): Promise<string> {
    return read('index.html');
  }

  @Get('chat.js')
  @Header('Content-Type', 'text/javascript; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  script(): Promise<string> {
    return read('chat.js');
  }

  @Get('chat.css')
  @Header('Content-Type', 'text/css; charset=utf-8')
  @Header('Cache-Control', 'no-cache')
  style(): Promise<string> {
    return read('chat.css');
  }
}
