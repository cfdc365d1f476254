/**
 * The sample's chat page at `/`, driven in headless Chromium: Debian's /usr/bin/chromium through
 * playwright-core, never a downloaded browser (`.ci/run` installs it when missing).
 */
import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Test } from '@nestjs/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocketSessions } from 'nest-websocket-routes';
import { AppModule } from '../../sample/app.module.js';

const CHROMIUM = '/usr/bin/chromium';
/** How long one step in the browser may take before the test fails. */
const STEP = 10_000;
/** For starting the app and the browser, and for the whole chat scenario. */
const LONG = 60_000;

describe('the sample chat page in a browser', () => {
  let app: INestApplication | undefined;
  let browser: Browser | undefined;
  let baseUrl: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); .ci/run does so`);
    }
    const moduleRef = await Test.createTestingModule({ imports: [AppModule] }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // We run as root in a container: no sandbox, and /dev/shm may be small.
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
  }, LONG);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
  }, LONG);

  /** The texts of the page's log lines, as shown. */
  const logLines = (page: Page) => page.locator('#log li').allTextContents();

  /** Waits until the page's log has a line reading exactly `text` (polls what the page shows). */
  const waitForLine = async (page: Page, text: string) => {
    const deadline = Date.now() + STEP;
    let lines = await logLines(page);
    while (!lines.includes(text)) {
      if (Date.now() > deadline) throw new Error(`no log line ${JSON.stringify(text)} within ${STEP} ms; the log has ${JSON.stringify(lines)}`);
      await sleep(25);
      lines = await logLines(page);
    }
  };

  const join = async (page: Page, name: string) => {
    await page.locator('#name').fill(name);
    await page.locator('#join').click();
    await waitForLine(page, `${name} joined`);
    await page.locator('#message:enabled').waitFor({ timeout: STEP });
  };

  const say = async (page: Page, text: string) => {
    await page.locator('#message').fill(text);
    await page.locator('#send').click();
  };

  it('serves the page, its script and its style over HTTP', async () => {
    for (const [path, type] of [['/', 'text/html'], ['/chat.js', 'text/javascript'], ['/chat.css', 'text/css']]) {
      const response = await fetch(`${baseUrl}${path}`);
      expect({ path, status: response.status, type: response.headers.get('content-type') }).toEqual({
        path,
        status: 200,
        type: expect.stringContaining(type),
      });
    }
    expect(await (await fetch(`${baseUrl}/`)).text()).toContain('<script src="chat.js">');
  });

  it('lets two pages chat in one room, and shows when one leaves', async () => {
    const pageA = await (await browser!.newContext()).newPage();
    const pageB = await (await browser!.newContext()).newPage();
    const errors: string[] = [];
    for (const page of [pageA, pageB]) page.on('pageerror', (error) => errors.push(error.message));

    const response = await pageA.goto(`${baseUrl}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toContain('text/html');
    await pageB.goto(`${baseUrl}/`);
    expect(await pageA.locator('#room').inputValue()).toBe('lobby');

    await join(pageA, 'alice');
    await join(pageB, 'bob');
    await waitForLine(pageA, 'bob joined');
    expect(await pageA.locator('#status').textContent()).toBe('In lobby as alice.');
    // Chromium offered permessage-deflate and the sample agreed: what follows goes through the inflater.
    const negotiated = app!.get(WebSocketSessions).list().map((session) => session.extensions.map((extension) => extension.response.name));
    expect(negotiated).toEqual([['permessage-deflate'], ['permessage-deflate']]);

    await say(pageA, 'hello bob');
    await waitForLine(pageB, 'alice: hello bob');
    await waitForLine(pageA, 'alice: hello bob');
    expect(await pageA.locator('#message').inputValue()).toBe('');

    // Peer text is shown as text, never parsed as HTML.
    const markup = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b>';
    await say(pageA, markup);
    await waitForLine(pageB, `alice: ${markup}`);
    expect(await pageB.locator('#log img, #log b').count()).toBe(0);

    // Over the 1 KiB deflate threshold: the room's broadcast of it reaches both pages compressed.
    const long = 'a long line '.repeat(150).trim();
    await say(pageB, long);
    await waitForLine(pageA, `bob: ${long}`);

    await say(pageB, 'bye alice');
    await waitForLine(pageA, 'bob: bye alice');

    await pageA.close();
    await waitForLine(pageB, 'alice left');
    expect(await logLines(pageB)).toEqual([
      'bob joined',
      'alice: hello bob',
      `alice: ${markup}`,
      `bob: ${long}`,
      'bob: bye alice',
      'alice left',
    ]);
    expect(await pageB.title()).not.toBe('pwned');
    expect(errors).toEqual([]);
    await pageB.close();
  }, LONG);
});
