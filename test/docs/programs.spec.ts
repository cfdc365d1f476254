/**
 * Every ```ts program block of README.md and docs/*.md runs as the echo
 * server it shows: started in its own Node process on the built package, a
 * `ws` client on the block's path and subprotocol gets its text back and its
 * Close answered with the same code and reason. One test a block, named by
 * page and line. The bound on each answer is a few seconds, so an example
 * that never answers the Close fails here instead of leaving a user's client
 * waiting 30 s for a 1006.
 */
import { WsClient } from '../support/ws-client.js';
import { blockPlace, documentationPages, readBlocks } from './markdown-blocks.js';
import { requireBuiltPackage, RunningProgram } from './program-runner.js';

const programs = documentationPages()
  .flatMap(readBlocks)
  .filter((block) => block.program !== undefined);
/** Long enough for a loaded machine, short enough that a Close nobody answers fails long before `ws`'s 30 s. */
const ANSWER_MS = 5000;
const TEXT = 'echo from the docs check';
const CLOSE = { code: 4001, reason: 'bye' };

describe('whole programs in the docs', () => {
  beforeAll(requireBuiltPackage);

  it('finds the programs (docs/routes-and-sessions.md has one)', () => {
    expect(programs.filter((block) => block.page === 'docs/routes-and-sessions.md').length).toBeGreaterThan(0);
  });

  it.each(programs.map((block) => [blockPlace(block), block] as const))('%s echoes a text and answers the Close', async (place, block) => {
    const { path, protocol } = block.program!;
    if (path === undefined) throw new Error(`${place}: a program block needs path=<the path its server answers on>`);
    const program = await RunningProgram.start(block);
    let client: WsClient | undefined;
    try {
      client = await WsClient.connect(`ws://127.0.0.1:${program.port}${path}`, protocol, { handshakeTimeout: ANSWER_MS });
      expect(client.ws.protocol).toBe(protocol ?? '');
      client.ws.send(TEXT);
      expect(await client.nextText(ANSWER_MS)).toBe(TEXT);
      client.ws.close(CLOSE.code, CLOSE.reason);
      expect(await client.waitClosed(ANSWER_MS)).toEqual(CLOSE);
    } catch (error) {
      throw new Error(`${place}: ${(error as Error).message}\n${program.describe()}`, { cause: error });
    } finally {
      client?.terminate();
      await program.kill();
    }
  });
});
