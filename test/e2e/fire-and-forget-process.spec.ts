/**
 * One client leaving must never take the server down: a real server process with Node's default
 * unhandled-rejection behaviour (test/fixtures/fire-and-forget-app.ts, built), whose routes go on
 * sending, closing, flushing and broadcasting without awaiting after their clients left (by TCP
 * close, close handshake, connection reset, or by not reading), on both kinds of session, with and
 * without permessage-deflate, while another client keeps echoing through the same process.
 */
import { join } from 'node:path';
import { within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS } from '../support/nest-app.js';
import { RawClient } from '../support/raw-client.js';
import { REPOSITORY, requireBuilt, ServerProcess } from '../support/server-process.js';
import { WsClient } from '../support/ws-client.js';

const FIXTURE = join(REPOSITORY, 'build/test/fixtures/fire-and-forget-app.js');
/** Round trips the echo client must still make once every route has fired. */
const ECHOES_AFTER = 20;

/** Echoes one numbered message at a time until told when to stop; records each answer, so a lost or wrong one shows. */
function keepEchoing(client: WsClient) {
  const sent: string[] = [];
  const answers: string[] = [];
  let stopAt = Number.POSITIVE_INFINITY;
  const loop = (async () => {
    while (answers.length < stopAt) {
      const message = `echo ${sent.length}`;
      sent.push(message);
      client.ws.send(message);
      answers.push(await client.nextText());
    }
  })();
  // Its failure (the server gone) is reported by stopAfter, or by whatever failed first.
  loop.catch(() => undefined);
  return {
    /** Makes `more` round trips from now, then stops; resolves with every message sent and every answer. */
    async stopAfter(more: number) {
      stopAt = answers.length + more;
      await loop;
      return { sent, answers };
    },
  };
}

describe.each(PLATFORMS)('a server process with Node’s default unhandled-rejection behaviour (%s)', (platform) => {
  const clients = new ClientTracker();
  let server: ServerProcess | undefined;

  beforeAll(() =>
    requireBuilt([
      { sources: 'lib', output: 'dist' },
      { sources: 'test/fixtures', output: 'build/test/fixtures' },
    ]),
  );
  afterEach(() => {
    clients.dropAll();
    server?.kill();
  });

  it('stays up and answers every echo while routes send without awaiting to clients that left', async () => {
    const started = await ServerProcess.start(FIXTURE, [platform]);
    server = started.server;
    const url = (path: string) => `ws://127.0.0.1:${started.port}${path}`;

    const echo = clients.track(await WsClient.connect(url('/echo'), undefined, { perMessageDeflate: false }));
    const echoing = keepEchoing(echo);

    /** Each way a client leaves, once ticks reach it: the route's sends are then refused. */
    const leavers: Array<Promise<void>> = [];
    for (const kind of ['default', 'raw']) {
      for (const deflate of [false, true]) {
        const path = `/leave/${kind}${deflate ? '-deflate' : ''}`;
        leavers.push(
          (async () => {
            const client = clients.track(await WsClient.connect(url(path), undefined, { perMessageDeflate: deflate }));
            await client.next();
            client.terminate();
          })(),
          (async () => {
            const client = clients.track(await WsClient.connect(url(path), undefined, { perMessageDeflate: deflate }));
            await client.next();
            client.ws.close(1000, 'leaving');
          })(),
        );
      }
      leavers.push(
        (async () => {
          const client = clients.track(await RawClient.connect(started.port, `/leave/${kind}`));
          await client.readFrame();
          client.socket.resetAndDestroy();
        })(),
        (async () => {
          // Never reads: the route's ticks of 64 KiB pass its maxBufferedBytes, and it is closed with 1008.
          const client = clients.track(await RawClient.connect(started.port, `/flood/${kind}`));
          client.socket.pause();
        })(),
      );
    }
    await server.whileRunning(Promise.all(leavers));

    const fired = await server.lines(/^fired /, leavers.length, 20_000);
    expect(fired.sort()).toEqual(
      [
        ...['default', 'raw'].flatMap((kind) => [
          ...Array(3).fill(`fired /leave/${kind}`),
          ...Array(2).fill(`fired /leave/${kind}-deflate`),
          `fired /flood/${kind}`,
        ]),
      ].sort(),
    );
    const { sent, answers } = await server.whileRunning(echoing.stopAfter(ECHOES_AFTER));
    expect(answers).toEqual(sent);
    expect(answers.length).toBeGreaterThanOrEqual(ECHOES_AFTER);

    expect(await server.stop()).toEqual({ code: 0, signal: null });
    expect(server.stderr).toBe('');
  });

  it('(the check itself) sees the process end when a rejection goes unhandled in it', async () => {
    // A send's rejection left unmarked ends it the same way: this shows the child runs with Node's default.
    const started = await ServerProcess.start(FIXTURE, [platform, 'reject-unhandled']);
    server = started.server;
    expect(await within(server.ended, 10_000, 'the process to end')).toEqual({ code: 1, signal: null });
    expect(server.stderr).toContain('unhandled on purpose');
  });
});
