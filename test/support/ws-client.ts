/**
 * A thin wrapper over a `ws` client for e2e tests: messages go into a queue
 * as they arrive, so a test awaits the next one without racing the event.
 */
import WebSocket from 'ws';

export interface WsMessage {
  data: Buffer;
  isBinary: boolean;
}

export class WsClient {
  private readonly queue: WsMessage[] = [];
  private waiter: (() => void) | undefined;
  /** Resolves with the close code and reason the client saw. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.queue.push({ data, isBinary });
      this.wake();
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ws.once('close', (code, reason) => {
        this.wake();
        resolve({ code, reason: reason.toString() });
      }),
    );
  }

  /** Opens a connection; rejects when the server refuses the upgrade. */
  static connect(url: string, protocols?: string | string[], options?: WebSocket.ClientOptions): Promise<WsClient> {
    const ws = new WebSocket(url, protocols, options);
    const client = new WsClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_request, response) => {
        reject(new Error(`Upgrade refused with ${response.statusCode}`));
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  get received(): number {
    return this.queue.length;
  }

  /** The next message; rejects after timeoutMs or when the connection closed first. */
  async next(timeoutMs = 5000): Promise<WsMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.queue.shift();
      if (message !== undefined) return message;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('Connection closed before a message came');
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error('Timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  async nextText(timeoutMs = 5000): Promise<string> {
    const message = await this.next(timeoutMs);
    if (message.isBinary) throw new Error('Expected a text message, got a binary one');
    return message.data.toString('utf8');
  }

  /** The close the client saw, or rejects after timeoutMs. */
  async waitClosed(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('Timed out waiting for the close')), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Drops the connection (for cleanup; harmless when already closed). */
  terminate(): void {
    this.ws.terminate();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
