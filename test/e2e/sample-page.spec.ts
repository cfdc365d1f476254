/**
 * The sample's chat page at `/`, driven in headless Chromium: Debian's /usr/bin/chromium through
 * playwright-core, never a downloaded browser (`.ci/run` installs it when missing).
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { RedisServer } from '../support/redis-server.js';
import { startSample, type SampleInstance } from '../support/sample-instances.js';

const CHROMIUM = '/usr/bin/chromium';
/** How long one step in the browser may take before the test fails. */
const STEP = 10_000;
/** For starting the app and the browser, and for the whole chat scenario. */
const LONG = 60_000;

let browser: Browser | undefined;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium); .ci/run does so`);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // We run as root in a container: no sandbox, and /dev/shm may be small.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}, LONG);

afterAll(() => browser?.close(), LONG);

/** The texts of the page's log lines, as shown. */
const logLines = (page: Page) => page.locator('#log li').allTextContents();

/** The names in the page's member list, as shown. */
const memberNames = (page: Page) => page.locator('#members li').allTextContents();

/** Polls what the page shows until `shown` holds; fails after STEP saying what it showed. */
const waitUntil = async <T,>(read: () => Promise<T>, shown: (value: T) => boolean, what: string) => {
  const deadline = Date.now() + STEP;
  let value = await read();
  while (!shown(value)) {
    if (Date.now() > deadline) throw new Error(`${what} not shown within ${STEP} ms; the page shows ${JSON.stringify(value)}`);
    await sleep(25);
    value = await read();
  }
};

/** Waits until the page's log has a line reading exactly `text`. */
const waitForLine = (page: Page, text: string) => waitUntil(() => logLines(page), (lines) => lines.includes(text), `log line ${JSON.stringify(text)}`);

/** Waits until the page's member list reads exactly `names`. */
const waitForMembers = (page: Page, ...names: string[]) =>
  waitUntil(() => memberNames(page), (shown) => shown.join() === names.join(), `members ${JSON.stringify(names)}`);

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

/** Browser contexts the current test opened: closed after it, so no page reconnects while its app shuts down. */
const contexts: BrowserContext[] = [];
afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

/** A page in a browser context of its own (as another browser would be), with its script errors collected. */
const openPage = async (errors: string[]) => {
  const context = await browser!.newContext();
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (error) => errors.push(error.message));
  return page;
};

describe('the sample chat page in a browser', () => {
  let instance: SampleInstance | undefined;
  let baseUrl: string;

  beforeAll(async () => {
    instance = await startSample();
    baseUrl = instance.baseUrl;
  }, LONG);

  afterAll(() => instance?.app.close(), LONG);

  it('serves the page, its script and its style over HTTP', async () => {
    for (const [path, type] of [['/', 'text/html'], ['/chat.js', 'text/javascript'], ['/chat.css', 'text/css']]) {
      const response = await fetch(`${baseUrl}${path}`);
      // Read to the end, so the connection is idle again when the app closes.
      await response.arrayBuffer();
      expect({ path, status: response.status, type: response.headers.get('content-type') }).toEqual({
        path,
        status: 200,
        type: expect.stringContaining(type),
      });
    }
    expect(await (await fetch(`${baseUrl}/`)).text()).toContain('<script src="chat.js">');
  });

  it('lets two pages chat in one room, and shows when one leaves', async () => {
    const errors: string[] = [];
    const pageA = await openPage(errors);
    const pageB = await openPage(errors);

    const response = await pageA.goto(`${baseUrl}/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-type']).toContain('text/html');
    await pageB.goto(`${baseUrl}/`);
    expect(await pageA.locator('#room').inputValue()).toBe('lobby');

    await join(pageA, 'alice');
    await join(pageB, 'bob');
    await waitForLine(pageA, 'bob joined');
    await waitForMembers(pageA, 'alice', 'bob');
    await waitForMembers(pageB, 'alice', 'bob');
    expect(await pageA.locator('#status').textContent()).toBe('In lobby as alice.');
    // Chromium offered permessage-deflate and the sample agreed: what follows goes through the inflater.
    const negotiated = instance!.sessions.list().map((session) => session.extensions.map((extension) => extension.response.name));
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
    await waitForMembers(pageB, 'bob');
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

describe('the sample chat page on two instances sharing a Redis (REDIS_URL)', () => {
  let redis: RedisServer | undefined;
  const instances: SampleInstance[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    instances.push(await startSample(redis.url), await startSample(redis.url));
  }, LONG);

  afterAll(async () => {
    for (const instance of instances) await instance.app.close();
    await redis?.remove();
  }, LONG);

  it('puts two pages on two instances in one room: messages both ways, both in the member list, recovery after a drop, and a leave', async () => {
    const errors: string[] = [];
    const pageA = await openPage(errors);
    const pageB = await openPage(errors);
    const socketUrls: string[] = [];
    pageA.on('websocket', (socket) => socketUrls.push(socket.url()));
    await pageA.goto(`${instances[0].baseUrl}/`);
    await pageB.goto(`${instances[1].baseUrl}/`);

    await join(pageA, 'alice');
    await join(pageB, 'bob');
    await waitForMembers(pageA, 'alice', 'bob');
    await waitForMembers(pageB, 'alice', 'bob');
    await say(pageA, 'hello from 1');
    await waitForLine(pageB, 'alice: hello from 1');
    await say(pageB, 'hello from 2');
    await waitForLine(pageA, 'bob: hello from 2');

    // Alice's connection drops (her instance ends it without a close frame): her page reconnects with the last
    // position it saw, and gets what bob said meanwhile.
    for (const session of instances[0].sessions.list()) session.terminate();
    await waitUntil(() => pageA.locator('#status').textContent(), (status) => status?.includes('reconnecting') === true, 'the reconnect');
    await say(pageB, 'while you were away');
    await waitForLine(pageA, 'bob: while you were away');
    await waitUntil(() => pageA.locator('#status').textContent(), (status) => status === 'In lobby as alice.', 'the room again');
    expect(socketUrls).toHaveLength(2);
    expect(new URL(socketUrls[1]).searchParams.get('offset')).toMatch(/^[1-9][0-9]*$/);
    expect(await logLines(pageA)).not.toContain('Reconnected; messages sent meanwhile could not be recovered');

    await pageB.close();
    await waitForMembers(pageA, 'alice');
    await waitForLine(pageA, 'bob left');
    expect(errors).toEqual([]);
    await pageA.close();
  }, LONG);
});
