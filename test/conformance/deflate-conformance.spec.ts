/**
 * permessage-deflate (RFC 7692) conformance of default sessions, in the
 * manner of Autobahn|Testsuite groups 12 and 13: every case in
 * ./deflate-cases.ts opens RawClient with its offers against an echo route
 * with its own deflate settings, checks the 101's answer (./deflate-codec.ts),
 * then compresses with node:zlib as agreed, inflates the server's messages
 * with exactly the window and context mode it agreed to, and checks each
 * echo and how the connection ends.
 */
import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { ClientTracker } from '../support/client-tracker.js';
import { RawClient } from '../support/raw-client.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import { checkNegotiation, Decompressor } from './deflate-codec.js';
import { ClientSession, deflateGroups, MODULE_DEFLATE, ROUTES, type DeflateCase } from './deflate-cases.js';
import { MessageReader, playCase } from './player.js';

const PREFIX = '/deflate/';

@Controller('deflate')
class DeflateEchoController {}

// One echo method per route, each with its own `deflate` option (none for `module`: the module's applies).
for (const route of Object.values(ROUTES)) {
  const descriptor: PropertyDescriptor = {
    value: async (session: DefaultWebSocketServerSession) => {
      for await (const frame of session.incoming) await session.send(frame);
    },
  };
  Object.defineProperty(DeflateEchoController.prototype, route.path, descriptor);
  WebSocketRoute(route.path, route.option === undefined ? {} : { deflate: route.option })(DeflateEchoController.prototype, route.path, descriptor);
}

const clients = new ClientTracker();
afterEach(() => clients.dropAll());

/** One header line each, told apart by the case of the name (Node joins them as one list). */
const headerName = (line: number) => ['Sec-WebSocket-Extensions', 'sec-websocket-extensions', 'SEC-WEBSOCKET-EXTENSIONS'][line];

async function open(port: number, path: string, offers: string[] = []) {
  const headers = Object.fromEntries(offers.map((line, i) => [headerName(i), line]));
  const opened = await RawClient.open(port, PREFIX + path, headers);
  clients.track(opened.client).socket.setNoDelay(true);
  return opened;
}

async function play(port: number, testCase: DeflateCase): Promise<void> {
  const { client, response } = await open(port, testCase.route.path, testCase.offers);
  expect(response.status).toBe(101);
  const { problems, agreement } = checkNegotiation(testCase.route, testCase.offers, response.headers['sec-websocket-extensions']);
  expect(problems).toEqual([]);
  const session = new ClientSession(testCase.route, agreement);
  const reader = new MessageReader(client, agreement && new Decompressor(agreement.server));
  await playCase(client, reader, { steps: testCase.steps(session), outcome: testCase.outcome }, async () => (await open(port, testCase.route.path)).client);
}

describe('RFC 7692 permessage-deflate conformance (Autobahn 12.x, 13.x style) of default session echo routes', () => {
  let t: TestApp;
  beforeAll(async () => (t = await startApp([DeflateEchoController], { deflate: MODULE_DEFLATE })));
  afterAll(() => t.close());

  for (const group of deflateGroups) {
    describe(`${group.id} ${group.title}`, () => {
      it.each(group.cases.map((testCase) => [`${testCase.id} ${testCase.title}`, testCase] as const))('%s', (_name, testCase) =>
        play(t.port, testCase),
      );
    });
  }
});
