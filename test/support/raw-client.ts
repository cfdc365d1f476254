/**
 * A WebSocket client on a bare TCP socket, for crafting frames no real client
 * would send. Its frame encoder and decoder are written here from RFC 6455,
 * independent of the library's codec, so tests do not grade the codec with itself.
 */
import { randomBytes, createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** RFC 6455 §5.2 opcodes, written out here rather than taken from the library under test. */
export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Buffer;
}

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  rsv?: number;
  /** Defaults to true: clients must mask. */
  mask?: boolean;
  /** Declared length, when it should lie about the payload. */
  declaredLength?: number;
}

export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : (spec.payload ?? Buffer.alloc(0));
  const length = spec.declaredLength ?? payload.length;
  const mask = spec.mask ?? true;
  const head: number[] = [((spec.fin ?? true) ? 0x80 : 0) | ((spec.rsv ?? 0) << 4) | spec.opcode];
  const maskBit = mask ? 0x80 : 0;
  let lengthBytes: Buffer;
  if (length < 126) {
    head.push(maskBit | length);
    lengthBytes = Buffer.alloc(0);
  } else if (length < 65536) {
    head.push(maskBit | 126);
    lengthBytes = Buffer.alloc(2);
    lengthBytes.writeUInt16BE(length);
  } else {
    head.push(maskBit | 127);
    lengthBytes = Buffer.alloc(8);
    lengthBytes.writeBigUInt64BE(BigInt(length));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), lengthBytes, payload]);
  const key = randomBytes(4);
  const masked = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) masked[i] = payload[i] ^ key[i % 4];
  return Buffer.concat([Buffer.from(head), lengthBytes, key, masked]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
  payload.writeUInt16BE(code);
  payload.write(reason, 2);
  return payload;
}

export interface HandshakeResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export class RawClient {
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      }),
    );
  }

  /** Opens TCP and sends an upgrade request; resolves with the client whatever the answer. */
  static async open(
    port: number,
    path: string,
    headers: Record<string, string | undefined> = {},
  ): Promise<{ client: RawClient; response: HandshakeResult }> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    const key = randomBytes(16).toString('base64');
    const all: Record<string, string | undefined> = {
      Host: `127.0.0.1:${port}`,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': key,
      'Sec-WebSocket-Version': '13',
      ...headers,
    };
    const lines = [`GET ${path} HTTP/1.1`];
    for (const [name, value] of Object.entries(all)) if (value !== undefined) lines.push(`${name}: ${value}`);
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    const response = await client.readHandshake();
    if (response.status === 101) {
      const expected = createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      if (response.headers['sec-websocket-accept'] !== expected) throw new Error('Bad Sec-WebSocket-Accept');
    }
    return { client, response };
  }

  /** Connects and expects 101. */
  static async connect(port: number, path: string, headers: Record<string, string | undefined> = {}): Promise<RawClient> {
    const { client, response } = await RawClient.open(port, path, headers);
    if (response.status !== 101) throw new Error(`Expected 101, got ${response.status}: ${response.body}`);
    return client;
  }

  send(spec: FrameSpec): void {
    this.socket.write(encodeFrame(spec));
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next frame from the server, or null when the connection ended first. Rejects after timeoutMs. */
  async readFrame(timeoutMs = 5000): Promise<RawFrame | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.tryParseFrame();
      if (frame !== undefined) return frame;
      if (this.ended) return null;
      await this.waitForData(deadline);
    }
  }

  /** Every frame until the server ends TCP (each read waits at most timeoutMs). */
  async readAll(timeoutMs = 5000): Promise<RawFrame[]> {
    const frames: RawFrame[] = [];
    for (;;) {
      const frame = await this.readFrame(timeoutMs);
      if (frame === null) return frames;
      frames.push(frame);
    }
  }

  /** Reads frames until a Close; returns its code (1005 for an empty one), or null if TCP ended first. */
  async readClose(timeoutMs = 5000): Promise<{ code: number; reason: string } | null> {
    for (;;) {
      const frame = await this.readFrame(timeoutMs);
      if (frame === null) return null;
      if (frame.opcode === 0x8) {
        if (frame.payload.length < 2) return { code: 1005, reason: '' };
        return { code: frame.payload.readUInt16BE(0), reason: frame.payload.toString('utf8', 2) };
      }
    }
  }

  /** Resolves true when the server closed TCP within timeoutMs. */
  async waitForEnd(timeoutMs = 5000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private async readHandshake(): Promise<HandshakeResult> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(head[0].split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const line of head.slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        let rest = this.buffer.subarray(end + 4);
        let body = '';
        if (status !== 101) {
          const length = Number(headers['content-length'] ?? 0);
          while (rest.length < length && !this.ended) {
            await this.waitForData(deadline);
            rest = this.buffer.subarray(end + 4);
          }
          body = rest.subarray(0, length).toString();
          rest = rest.subarray(length);
        }
        this.buffer = rest;
        return { status, headers, body };
      }
      if (this.ended) throw new Error('Connection closed during the handshake');
      await this.waitForData(deadline);
    }
  }

  private tryParseFrame(): RawFrame | undefined {
    const b = this.buffer;
    if (b.length < 2) return undefined;
    let length = b[1] & 0x7f;
    let offset = 2;
    if (length === 126) {
      if (b.length < 4) return undefined;
      length = b.readUInt16BE(2);
      offset = 4;
    } else if (length === 127) {
      if (b.length < 10) return undefined;
      length = Number(b.readBigUInt64BE(2));
      offset = 10;
    }
    if ((b[1] & 0x80) !== 0) throw new Error('Server frames must not be masked');
    if (b.length < offset + length) return undefined;
    const frame = {
      fin: (b[0] & 0x80) !== 0,
      rsv: (b[0] >> 4) & 7,
      opcode: b[0] & 0x0f,
      payload: Buffer.from(b.subarray(offset, offset + length)),
    };
    this.buffer = b.subarray(offset + length);
    return frame;
  }

  private waitForData(deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        reject(new Error('Timed out waiting for the server'));
        return;
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((waiter) => waiter !== wake);
        reject(new Error('Timed out waiting for the server'));
      }, remaining);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.waiters.push(wake);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
