/**
 * Writes grouped per turn of the event loop, on a real loopback socket: a connection's first write of a
 * turn leaves at once, the others of that turn leave together at its end (one writev), and a write in
 * a later turn leaves at once again. The socket's stream hooks (`_write`, `_writev`) are counted: each is
 * one system call on a socket with room in its buffer.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Frame } from '../../lib/protocol/frame.js';
import { WebSocketConnection, type FrameReceiver } from '../../lib/session/websocket-connection.js';

const receiver: FrameReceiver = {
  canReceive: true,
  onFrame: () => undefined,
  onProtocolError: () => undefined,
  onClosed: () => undefined,
  onIdleTimeout: () => undefined,
  onSendBufferFull: () => undefined,
};

/** What reached the socket's stream hooks: `write` for one chunk, `writev <n>` for n chunks at once. */
function recordHooks(socket: Socket): string[] {
  const calls: string[] = [];
  const hooks = socket as unknown as Record<'_write' | '_writev', (...args: unknown[]) => void>;
  const write = hooks._write.bind(socket);
  const writev = hooks._writev.bind(socket);
  hooks._write = (...args) => {
    calls.push('write');
    write(...args);
  };
  hooks._writev = (chunks, ...rest) => {
    calls.push(`writev ${(chunks as unknown[]).length}`);
    writev(chunks, ...rest);
  };
  return calls;
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

describe('writes grouped per turn of the event loop', () => {
  let server: Server;
  let serverSide: Socket;
  let clientSide: Socket;
  let connection: WebSocketConnection;
  let calls: string[];

  beforeEach(async () => {
    server = createServer();
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    clientSide = connect((server.address() as { port: number }).port, '127.0.0.1');
    clientSide.resume();
    serverSide = await accepted;
    connection = new WebSocketConnection(serverSide, Buffer.alloc(0), 1 << 20, 1_000);
    connection.setLimits({ maxBufferedBytes: 1 << 30, idleTimeout: 0 });
    connection.start(receiver);
    calls = recordHooks(serverSide);
  });

  afterEach(async () => {
    clientSide.destroy();
    serverSide.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the first write of a turn at once and the other 99 together when the turn ends', async () => {
    for (let n = 0; n < 100; n++) void connection.write(new Frame.Text(`message ${n}`));
    expect(calls).toEqual(['write']);
    await nextTurn();
    expect(calls).toEqual(['write', 'writev 99']);
  });

  it('holds every write of a turn that follows one of several writes, so a steady stream of bursts takes one writev a turn', async () => {
    for (let turn = 0; turn < 3; turn++) {
      for (let n = 0; n < 10; n++) void connection.write(new Frame.Text(`turn ${turn} message ${n}`));
      await nextTurn();
    }
    expect(calls).toEqual(['write', 'writev 9', 'writev 10', 'writev 10']);
    // A lone write after the stream: held once (the turn before was a burst), then at once again.
    void connection.write(new Frame.Text('after'));
    await nextTurn();
    void connection.write(new Frame.Text('quiet'));
    expect(calls.slice(4)).toEqual(['write', 'write']);
  });

  it('sends a lone write of each turn at once, holding nothing', async () => {
    for (let turn = 0; turn < 3; turn++) {
      void connection.write(new Frame.Text(`turn ${turn}`));
      expect(calls).toHaveLength(turn + 1);
      await nextTurn();
    }
    expect(calls).toEqual(['write', 'write', 'write']);
  });
});
