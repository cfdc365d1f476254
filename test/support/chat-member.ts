/**
 * A member of the sample's chat room over a real `ws` client, as the page sees the room: the log lines
 * (`alice joined`, `alice: hi`, `alice left`), the last member list, the welcome, and the last position, in
 * the order the server sent them (the protocol: sample/chat/chat.controller.ts).
 */
import type { StreamPosition } from 'nest-websocket-routes';
import WebSocket from 'ws';
import { eventually } from './async.js';

interface Received {
  type?: string;
  name?: string;
  text?: string;
  position?: StreamPosition;
  recovered?: boolean;
  members?: { name: string }[];
}

/** How long a change may take to reach a member through Redis before the test fails (a bound, not a timing). */
const REACH_MS = 10_000;

export class ChatMember {
  /** Everything received, parsed, in order. */
  readonly received: Received[] = [];

  /** Listening from the start: the server may write in the same chunk as its handshake answer. */
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => this.received.push(JSON.parse(data.toString()) as Received));
    ws.on('error', () => undefined);
  }

  /** Joins `room` at `baseUrl` (`http://127.0.0.1:port`) as `name`, from `since` when given; resolves once welcomed. */
  static async join(baseUrl: string, room: string, name: string, since?: StreamPosition): Promise<ChatMember> {
    const query = new URLSearchParams({ name });
    if (since !== undefined) {
      query.set('offset', String(since.offset));
      query.set('epoch', since.epoch);
    }
    const url = `${baseUrl.replace(/^http/, 'ws')}/chat/rooms/${encodeURIComponent(room)}?${query}`;
    const member = new ChatMember(new WebSocket(url, 'chat.v1'));
    await new Promise((resolve, reject) => {
      member.ws.once('open', resolve);
      member.ws.once('error', reject);
    });
    await member.until(() => member.welcome !== undefined, `${name} to be welcomed in ${room}`);
    return member;
  }

  get welcome(): Received | undefined {
    return this.received.find((message) => message.type === 'welcome');
  }

  /** What the room said, as the page's log shows it. */
  get lines(): string[] {
    return linesOf(this.received);
  }

  /** What the room said before the welcome: what a reconnect recovered. */
  get linesBeforeWelcome(): string[] {
    return linesOf(this.received.slice(0, this.received.findIndex((message) => message.type === 'welcome')));
  }

  /** The names in the last member list, as sent. */
  get members(): string[] | undefined {
    return this.received.findLast((message) => message.type === 'members')?.members?.map((member) => member.name);
  }

  /** The positions of the room's events, in order. */
  get positions(): StreamPosition[] {
    return this.received.flatMap((message) => (message.type !== 'welcome' && message.position !== undefined ? [message.position] : []));
  }

  send(text: string): void {
    this.ws.send(text);
  }

  terminate(): void {
    this.ws.terminate();
  }

  async until(condition: () => boolean, what: string): Promise<void> {
    await eventually(condition, what, REACH_MS).catch((error: Error) => {
      throw new Error(`${error.message}; received ${JSON.stringify(this.received)}`);
    });
  }

  untilLine(line: string): Promise<void> {
    return this.until(() => this.lines.includes(line), `the line ${JSON.stringify(line)}`);
  }

  untilMembers(...names: string[]): Promise<void> {
    return this.until(() => this.members?.join() === names.join(), `the members ${names.join(', ')}`);
  }
}

function linesOf(received: Received[]): string[] {
  return received.flatMap((message) => {
    if (message.type === 'join' || message.type === 'leave') return [`${message.name} ${message.type === 'join' ? 'joined' : 'left'}`];
    return message.type === 'message' ? [`${message.name}: ${message.text}`] : [];
  });
}
