/**
 * A peer that drives topics over a WebSocket, for the topic e2e tests: the
 * route side runs JSON commands a client sends (subscribe with options,
 * unsubscribe, publish to the others), and the client side tells the replies
 * to those commands apart from what topics deliver.
 */
import type { DefaultWebSocketServerSession, WebSocketSessions } from 'nest-websocket-routes';
import type { SubscribeOptions } from 'nest-websocket-routes';
import type { WsClient, WsMessage } from './ws-client.js';

/**
 * `{ sub, since?, data? }`, `{ unsub }`, `{ say, text }` and `{ sayValue, value }` (published to the others),
 * `{ subThenUnsub, data }` (unsubscribes before the subscription settled).
 */
export type TopicCommand =
  | { sub: string; since?: unknown; data?: unknown }
  | { unsub: string }
  | { say: string; text: string }
  | { sayValue: string; value: unknown }
  | { subThenUnsub: string; data?: unknown };

/** The route side: answers each command with `{ reply: result }` or `{ reply: { error: 'Name: message' } }`. */
export async function runTopicCommands(session: DefaultWebSocketServerSession, sessions: WebSocketSessions): Promise<void> {
  for await (const frame of session.incoming) {
    const command = JSON.parse(frame.readText()) as TopicCommand;
    let reply: unknown;
    try {
      reply = (await runCommand(session, sessions, command)) ?? null;
    } catch (error) {
      reply = { error: `${(error as Error).name}: ${(error as Error).message}` };
    }
    await session.sendSerialized({ reply });
  }
}

function runCommand(session: DefaultWebSocketServerSession, sessions: WebSocketSessions, command: TopicCommand): Promise<unknown> {
  if ('sub' in command) {
    const options = 'since' in command || 'data' in command ? ({ since: command.since, data: command.data } as SubscribeOptions) : undefined;
    return session.subscribe(command.sub, options);
  }
  if ('unsub' in command) return session.unsubscribe(command.unsub);
  if ('say' in command) return sessions.publish(command.say, command.text, { except: session });
  if ('sayValue' in command) return sessions.publishSerialized(command.sayValue, command.value, { except: session });
  const subscribed = session.subscribe(command.subThenUnsub, { data: command.data });
  return session.unsubscribe(command.subThenUnsub).then(() => subscribed);
}

/** The client side: `ask` waits for the command's reply; what topics delivered meanwhile waits for `next`. */
export class TopicPeer {
  private readonly delivered: WsMessage[] = [];

  constructor(readonly client: WsClient) {}

  async ask(command: TopicCommand): Promise<unknown> {
    this.client.ws.send(JSON.stringify(command));
    for (;;) {
      const message = await this.client.next();
      const reply = replyOf(message);
      if (reply !== undefined) return reply.reply;
      this.delivered.push(message);
    }
  }

  /** The next message a topic delivered (not a reply). */
  async next(): Promise<WsMessage> {
    const waiting = this.delivered.shift();
    if (waiting !== undefined) return waiting;
    const message = await this.client.next();
    if (replyOf(message) !== undefined) throw new Error(`Expected a delivered message, got the reply ${message.data.toString()}`);
    return message;
  }

  async nextText(): Promise<string> {
    const message = await this.next();
    if (message.isBinary) throw new Error('Expected a text message, got a binary one');
    return message.data.toString('utf8');
  }

  async nextJson(): Promise<Record<string, unknown>> {
    return JSON.parse(await this.nextText()) as Record<string, unknown>;
  }

  close(): Promise<unknown> {
    this.client.ws.close(1000);
    return this.client.waitClosed();
  }
}

function replyOf(message: WsMessage): { reply: unknown } | undefined {
  if (message.isBinary) return undefined;
  try {
    const parsed = JSON.parse(message.data.toString('utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null && 'reply' in parsed ? (parsed as { reply: unknown }) : undefined;
  } catch {
    return undefined;
  }
}
