/**
 * Sends nobody awaits, on every path by which a session stops being able to
 * send, on both kinds of session and both platforms: an awaited send rejects
 * with ClosedSendChannelError, an un-awaited one is no unhandled rejection.
 * Also `isActive` over a session's life, the caller's mistakes staying
 * visible rejections, and the test client's `close()` not awaited.
 *
 * Jest 30 fails the running test when a rejection goes unhandled (a test
 * file's `process` is Jest's copy, so a listener of our own would never hear
 * it); Node reports one at the end of the turn it happened in. So the tests
 * below that send without awaiting fail, in `turns()`, if one rejected loudly.
 */
import 'reflect-metadata';
import { Controller } from '@nestjs/common';
import {
  ClosedReceiveChannelError,
  ClosedSendChannelError,
  CloseReason,
  Frame,
  WebSocketRoute,
  WebSocketSessions,
  WebSocketExtensionHeader,
  type DefaultWebSocketServerSession,
  type WebSocketExtension,
  type WebSocketExtensionFactory,
  type WebSocketServerSession,
} from 'nest-websocket-routes';
import { connectWebSocket, WebSocketReceiveError } from 'nest-websocket-routes/testing';
import { deferred, within } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { closePayload, Opcode, RawClient } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

type AnySession = DefaultWebSocketServerSession | WebSocketServerSession;
type Kind = 'default' | 'raw';
const KINDS: Kind[] = ['default', 'raw'];
const KiB = 1024;
/** Over permessage-deflate's default threshold (1 KiB): such a frame goes through zlib, asynchronously. */
const COMPRESSED = 4 * KiB;
const payload = (bytes: number) => Buffer.alloc(bytes, 'x');

/** `x-refuse`: an extension that throws, synchronously, on every outgoing data frame (a bug in a user's extension). */
class RefusingExtension implements WebSocketExtension {
  readonly response = new WebSocketExtensionHeader('x-refuse', []);

  constructor(readonly factory: WebSocketExtensionFactory) {}

  processOutgoingFrame(frame: Frame): Frame {
    if (frame.frameType.controlFrame) return frame;
    throw new Error('x-refuse refuses every outgoing data frame');
  }

  processIncomingFrame(frame: Frame): Frame {
    return frame;
  }

  dispose(): void {}
}

const refusingFactory: WebSocketExtensionFactory = {
  name: 'x-refuse',
  rsv1: false,
  rsv2: false,
  rsv3: false,
  config: {},
  negotiate: () => new RefusingExtension(refusingFactory),
};

let handed = deferred<AnySession>();
let release = deferred();

/** Hands the session to the test and keeps it open (its handler running) until the test is over. */
async function hold(session: AnySession): Promise<void> {
  handed.resolve(session);
  await release.promise;
}

@Controller()
class HeldSessionsController {
  @WebSocketRoute('default')
  default(session: DefaultWebSocketServerSession) {
    return hold(session);
  }

  @WebSocketRoute('raw', { raw: true })
  raw(session: WebSocketServerSession) {
    return hold(session);
  }

  @WebSocketRoute('default-small-buffer', { maxBufferedBytes: 64 * KiB })
  defaultSmallBuffer(session: DefaultWebSocketServerSession) {
    return hold(session);
  }

  @WebSocketRoute('raw-small-buffer', { raw: true, maxBufferedBytes: 64 * KiB })
  rawSmallBuffer(session: WebSocketServerSession) {
    return hold(session);
  }

  @WebSocketRoute('default-deflate', { deflate: true, maxBufferedBytes: 16 * KiB })
  defaultDeflate(session: DefaultWebSocketServerSession) {
    return hold(session);
  }

  @WebSocketRoute('raw-deflate', { raw: true, negotiateExtensions: true, deflate: true, maxBufferedBytes: 16 * KiB })
  rawDeflate(session: WebSocketServerSession) {
    return hold(session);
  }

  @WebSocketRoute('default-refusing', { extensions: [refusingFactory] })
  defaultRefusing(session: DefaultWebSocketServerSession) {
    return hold(session);
  }

  @WebSocketRoute('raw-refusing', { raw: true, negotiateExtensions: true, extensions: [refusingFactory] })
  rawRefusing(session: WebSocketServerSession) {
    return hold(session);
  }

  /** Ends TCP at once, without a Close: what the test client's close() then finds. */
  @WebSocketRoute('hang-up', { raw: true })
  hangUp() {
    return undefined;
  }
}

/** A few turns of the event loop: where an unhandled rejection would fail the test (see the header). */
async function turns(count = 5): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Resolves once the session's `incoming` ended, as it does when the connection is gone. */
async function connectionGone(session: AnySession): Promise<void> {
  const drained = (async () => {
    try {
      for (;;) await session.incoming.receive();
    } catch (error) {
      if (!(error instanceof ClosedReceiveChannelError)) throw error;
    }
  })();
  await within(drained, 5000, 'the session to see its connection end');
}

/**
 * Sends 256 KiB frames without awaiting them to a client that does not read, until the socket keeps
 * data queued past a turn: later sends wait for a 'drain' that will not come. Returns the last send
 * (wrapped: an async function returning a promise would wait for it).
 */
async function fillUntilWaitingForDrain(session: AnySession): Promise<{ sent: Promise<void> }> {
  const socket = session.call.request.socket;
  for (let i = 0; i < 256; i++) {
    const sent = session.send(payload(256 * KiB));
    await turns(1);
    if (socket.writableLength > 0) return { sent };
  }
  throw new Error('The socket never kept data queued: the client reads after all?');
}

/** Every way a handler may send without awaiting (a timer, an event callback, a broadcast loop), none awaited. */
function sendWithoutAwaiting(session: AnySession, sessions: WebSocketSessions): void {
  void session.send('tick');
  void session.send(payload(COMPRESSED));
  void session.sendSerialized({ tick: 1 });
  void session.outgoing.send(new Frame.Binary(payload(COMPRESSED)));
  void session.flush();
  void sessions.broadcast([session], 'tick');
  void sessions.broadcastSerialized([session], { tick: 1 });
  void session.close();
  void session.send('after close');
}

/** What each of those does when awaited once the session cannot send. */
async function expectRefused(kind: Kind, session: AnySession, sessions: WebSocketSessions): Promise<void> {
  expect(session.isActive).toBe(false);
  await expect(session.send('tick')).rejects.toBeInstanceOf(ClosedSendChannelError);
  await expect(session.send(payload(COMPRESSED))).rejects.toBeInstanceOf(ClosedSendChannelError);
  await expect(session.sendSerialized({ tick: 1 })).rejects.toBeInstanceOf(ClosedSendChannelError);
  await expect(session.outgoing.send(new Frame.Binary(payload(COMPRESSED)))).rejects.toBeInstanceOf(ClosedSendChannelError);
  await expect(session.flush()).resolves.toBeUndefined();
  await expect(sessions.broadcast([session], 'tick')).resolves.toEqual({ sent: 0, failed: 1 });
  await expect(sessions.broadcastSerialized([session], { tick: 1 })).resolves.toEqual({ sent: 0, failed: 1 });
  // A default session's close() is the close handshake, done or under way: it resolves. A raw one's is a send.
  if (kind === 'raw') await expect(session.close()).rejects.toBeInstanceOf(ClosedSendChannelError);
  else await expect(session.close()).resolves.toBeUndefined();
}

describe.each(PLATFORMS)('sends nobody awaits (%s)', (platform) => {
  let t: TestApp;
  let sessions: WebSocketSessions;
  const clients = new ClientTracker();

  beforeAll(async () => {
    t = await startApp([HeldSessionsController], { closeTimeout: 10_000 }, [], { platform });
    sessions = t.app.get(WebSocketSessions);
  });
  afterAll(() => t.close());
  beforeEach(() => {
    handed = deferred();
  });
  afterEach(() => {
    clients.dropAll();
    release.resolve();
    release = deferred();
  });

  const wsClient = async (path: string, perMessageDeflate = false) =>
    clients.track(await WsClient.connect(t.url(`/${path}`), undefined, { perMessageDeflate }));
  const rawClient = async (path: string, headers: Record<string, string> = {}) =>
    clients.track(await RawClient.connect(t.port, `/${path}`, headers));
  const session = () => within(handed.promise, 5000, 'the route to hand over its session');

  /**
   * A session brought to the state a path describes, and its client; `lastInFlight` is a send made (not
   * awaited) on the way there.
   */
  interface Reached {
    session: AnySession;
    client: RawClient | WsClient;
    lastInFlight?: Promise<void>;
  }

  /** Ends what is left of the connection, so sends still waiting on it settle within the test. */
  async function leave({ session: reached, client }: Reached): Promise<void> {
    if (client instanceof RawClient) client.destroy();
    else client.terminate();
    await connectionGone(reached);
  }

  const PATHS: Array<[string, (kind: Kind) => Promise<Reached>]> = [
    [
      'after the client left (TCP closed)',
      async (kind) => {
        const client = await wsClient(kind);
        const reached = await session();
        client.terminate();
        await connectionGone(reached);
        return { session: reached, client };
      },
    ],
    [
      'after a Close went out, the client not answering it',
      async (kind) => {
        const client = await rawClient(kind);
        const reached = await session();
        await reached.close(new CloseReason(4000, 'server leaves'));
        return { session: reached, client };
      },
    ],
    [
      "while sends wait for 'drain' and the client closes TCP",
      async (kind) => {
        const client = await rawClient(kind);
        client.socket.pause();
        const reached = await session();
        const { sent: lastInFlight } = await fillUntilWaitingForDrain(reached);
        client.destroy();
        await connectionGone(reached);
        return { session: reached, client, lastInFlight };
      },
    ],
    [
      "while sends wait for 'drain' and the client resets the connection (ECONNRESET)",
      async (kind) => {
        const client = await rawClient(kind);
        client.socket.pause();
        const reached = await session();
        const socketErrors: string[] = [];
        reached.call.request.socket.on('error', (error: NodeJS.ErrnoException) => socketErrors.push(String(error.code)));
        const { sent: lastInFlight } = await fillUntilWaitingForDrain(reached);
        client.socket.resetAndDestroy();
        await connectionGone(reached);
        expect(socketErrors).toContain('ECONNRESET');
        return { session: reached, client, lastInFlight };
      },
    ],
    [
      'once maxBufferedBytes refused a send (the client does not read)',
      async (kind) => {
        const client = await rawClient(`${kind}-small-buffer`);
        client.socket.pause();
        const reached = await session();
        let lastInFlight: Promise<void> | undefined;
        for (let i = 0; i < 256 && reached.isActive; i++) {
          lastInFlight = reached.send(payload(256 * KiB));
          await turns(1);
        }
        expect(reached.isActive).toBe(false);
        return { session: reached, client, lastInFlight };
      },
    ],
    [
      'through permessage-deflate, after the client left',
      async (kind) => {
        const client = await wsClient(`${kind}-deflate`, true);
        const reached = await session();
        expect(reached.extensions).toHaveLength(1);
        client.terminate();
        await connectionGone(reached);
        return { session: reached, client };
      },
    ],
    [
      'through permessage-deflate, frames inside zlib when the client leaves',
      async (kind) => {
        const client = await wsClient(`${kind}-deflate`, true);
        const reached = await session();
        void reached.send(payload(COMPRESSED));
        const lastInFlight = reached.send(payload(COMPRESSED));
        client.terminate();
        await connectionGone(reached);
        return { session: reached, client, lastInFlight };
      },
    ],
    [
      'through permessage-deflate, once frames waiting for zlib passed maxBufferedBytes',
      async (kind) => {
        const client = await wsClient(`${kind}-deflate`, true);
        const reached = await session();
        let lastInFlight: Promise<void> | undefined;
        // 4 KiB each, all in one turn: from the sixth on, more than 16 KiB waits behind zlib.
        for (let i = 0; i < 8; i++) lastInFlight = reached.send(payload(COMPRESSED));
        expect(reached.isActive).toBe(false);
        return { session: reached, client, lastInFlight };
      },
    ],
    [
      'through an extension that throws on an outgoing frame (the session closes with 1011)',
      async (kind) => {
        const client = await rawClient(`${kind}-refusing`, { 'Sec-WebSocket-Extensions': 'x-refuse' });
        const reached = await session();
        expect(reached.extensions).toHaveLength(1);
        const lastInFlight = reached.send('refused');
        expect(await client.readClose()).toEqual({ code: 1011, reason: 'Internal server error' });
        return { session: reached, client, lastInFlight };
      },
    ],
  ];

  describe.each(KINDS)('%s session', (kind) => {
    describe.each(PATHS)('%s', (_, reach) => {
      it('no send, close, flush or broadcast left unawaited becomes an unhandled rejection', async () => {
        const reached = await reach(kind);
        sendWithoutAwaiting(reached.session, sessions);
        // Sends queue behind zlib work in order: once a later one settled, all before it have.
        await reached.session.send(payload(COMPRESSED)).catch(() => undefined);
        await turns();
        // Sends still waiting on the connection (for 'drain') reject now.
        await leave(reached);
        await turns();
        expect(reached.session.isActive).toBe(false);
      });

      it('awaited, each send rejects with ClosedSendChannelError (broadcasts count it as failed)', async () => {
        const { session: reached, lastInFlight } = await reach(kind);
        if (lastInFlight !== undefined) await expect(lastInFlight).rejects.toBeInstanceOf(ClosedSendChannelError);
        await expectRefused(kind, reached, sessions);
      });
    });
  });

  it('registry.closeAll, not awaited, with one session gone and one open, rejects nothing and closes the open one with 1001', async () => {
    const gone = await wsClient('default');
    const reached = await session();
    const open = await wsClient('raw');
    gone.terminate();
    await connectionGone(reached);
    void sessions.closeAll(100);
    sendWithoutAwaiting(reached, sessions);
    expect((await open.waitClosed()).code).toBe(1001);
    await turns();
  });

  describe('isActive', () => {
    it.each(KINDS)('%s: true from the 101 and while sends go out, false once the client left', async (kind) => {
      const client = await wsClient(kind);
      const reached = await session();
      expect(reached.isActive).toBe(true);
      await reached.send('hello');
      expect(await client.nextText()).toBe('hello');
      expect(reached.isActive).toBe(true);
      client.terminate();
      await connectionGone(reached);
      expect(reached.isActive).toBe(false);
    });

    it('default: false from the moment close() is called, before its Close frame went out', async () => {
      await rawClient('default');
      const reached = await session();
      const closing = reached.close();
      expect(reached.isActive).toBe(false);
      await closing;
      expect(reached.isActive).toBe(false);
    });

    it("default: false once the peer's Close arrived, though its own Close goes out a turn later", async () => {
      const client = await wsClient('default');
      const reached = (await session()) as DefaultWebSocketServerSession;
      client.ws.close(4001, 'client leaves');
      expect(await within(reached.closeReason, 5000, 'closeReason')).toEqual(new CloseReason(4001, 'client leaves'));
      expect(reached.isActive).toBe(false);
    });

    it("raw: still true once the peer's Close arrived (the handler answers it), false once its own Close went out", async () => {
      const client = await rawClient('raw');
      const reached = await session();
      client.send({ opcode: Opcode.CLOSE, payload: closePayload(4001, 'client leaves') });
      const frame = await within(reached.incoming.receive(), 5000, "the peer's Close");
      expect(frame.readReason()).toEqual(new CloseReason(4001, 'client leaves'));
      expect(reached.isActive).toBe(true);
      await reached.close(new CloseReason(4001));
      expect(reached.isActive).toBe(false);
    });

    it('raw with deflate: false as soon as close() is called, its Close still queued behind zlib work', async () => {
      await wsClient('raw-deflate', true);
      const reached = await session();
      const inZlib = reached.send(payload(COMPRESSED));
      const closing = reached.close();
      expect(reached.isActive).toBe(false);
      await Promise.all([inZlib, closing]);
      expect(reached.isActive).toBe(false);
    });
  });

  describe("the caller's mistakes stay visible rejections, never synchronous throws", () => {
    it.each(KINDS)('%s: content that is no text nor bytes, a value the converter refuses, a close code that may not be sent, a selector that throws', async (kind) => {
      const client = await wsClient(kind);
      const reached = await session();
      const calls: Array<[string, () => Promise<unknown>, unknown]> = [
        ['send(undefined)', () => reached.send(undefined as unknown as string), TypeError],
        ['sendSerialized(a BigInt)', () => reached.sendSerialized(10n), TypeError],
        ['close(1005)', () => reached.close(new CloseReason(1005)), RangeError],
        ['broadcast(a selector that throws)', () => sessions.broadcast(() => { throw new SyntaxError('selector bug'); }, 'x'), SyntaxError],
      ];
      for (const [, call, errorType] of calls) {
        let result: Promise<unknown> | undefined;
        expect(() => (result = call())).not.toThrow();
        await expect(result).rejects.toBeInstanceOf(errorType);
      }
      // None of them harmed the session.
      expect(reached.isActive).toBe(true);
      await reached.send('still here');
      expect(await client.nextText()).toBe('still here');
    });
  });

  describe("the test client's close()", () => {
    it('not awaited, a server that hung up without a Close is no unhandled rejection', async () => {
      const client = await connectWebSocket(t.app, '/hang-up');
      void client.close();
      const awaited = await connectWebSocket(t.app, '/hang-up');
      await expect(awaited.close()).rejects.toBeInstanceOf(WebSocketReceiveError);
      await turns();
    });

    it('rejects with a RangeError for a code that may not be sent, and sends nothing', async () => {
      const client = await connectWebSocket(t.app, '/default');
      await session();
      await expect(client.close(1005)).rejects.toBeInstanceOf(RangeError);
      await expect(client.close(4000)).resolves.toEqual({ code: 4000, reason: '' });
    });
  });
});
