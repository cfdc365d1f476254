/**
 * Chat rooms on `/chat/rooms/:room?name=<name>[&offset=<n>&epoch=<e>]` with the `chat.v1` subprotocol. Each
 * member subscribes to its room's topic (`room:<room>`, see room-topics.ts) and is in its presence as `{ name }`;
 * every text it sends is published there. With a RedisBroker (REDIS_URL) a room spans the instances.
 *
 * The protocol, JSON texts from the server:
 * - `{ type: 'welcome', recovered, position }`, once, when the subscription began. `recovered: true`: what was
 *   published after the `offset` and `epoch` the client gave came just before it. `false`: no position was
 *   given, or it is too old or of another epoch; nothing before `position` is sent.
 * - `{ type: 'members', members: [{ name }] }`: who is in the room, on every instance, each time that changes
 *   (sorted by name; replaces the previous list).
 * - `{ type: 'join' | 'leave', name, position }` and `{ type: 'message', name, text, position }`: what the room
 *   says, the sender's own messages included. `position` (`{ offset, epoch }`) is the message's place in the
 *   room's history: a client that reconnects with the last one it saw (`offset`, `epoch` in the query) gets what
 *   it missed before its welcome.
 * From the client: each text is a message to the room.
 */
import { Controller, Param, Query } from '@nestjs/common';
import {
  CloseCode,
  WebSocketBrokerError,
  WebSocketCloseException,
  WebSocketRoute,
  WebSocketSessions,
  WsSession,
  type DefaultWebSocketServerSession,
  type StreamPosition,
} from 'nest-websocket-routes';
import type { ChatEvent, MemberData, Welcome } from './chat-protocol.js';
import { RoomMembers } from './room-members.js';
import { roomTopic } from './room-topics.js';

@Controller('chat')
export class ChatController {
  constructor(
    private readonly sessions: WebSocketSessions,
    private readonly members: RoomMembers,
  ) {}

  @WebSocketRoute('rooms/:room', { protocol: 'chat.v1' })
  async room(
    @WsSession() session: DefaultWebSocketServerSession,
    @Param('room') room: string,
    @Query('name') name: unknown,
    @Query('offset') offset: unknown,
    @Query('epoch') epoch: unknown,
  ): Promise<void> {
    const who = typeof name === 'string' && name !== '' ? name : 'anonymous';
    const topic = roomTopic(room);
    const since: StreamPosition | undefined = typeof offset === 'string' && typeof epoch === 'string' ? { offset: Number(offset), epoch } : undefined;
    const { recovered, position } = await session.subscribe(topic, { since, data: { name: who } satisfies MemberData }).catch((error: Error) => {
      if (error instanceof WebSocketBrokerError) throw unreachable();
      // A room name over the topic limit (256 bytes) or a malformed position is the client's to fix: 1008, not an error of ours.
      throw new WebSocketCloseException(CloseCode.VIOLATED_POLICY, error.message);
    });
    await session.sendSerialized({ type: 'welcome', recovered, position } satisfies Welcome);
    // Its own presence join does this too, but this one is sure to come after the subscription.
    this.members.refresh(topic);
    await this.say(topic, { type: 'join', name: who });
    try {
      for await (const frame of session.incoming) {
        await this.say(topic, { type: 'message', name: who, text: frame.readText() });
      }
    } finally {
      // Unheard while the broker is away; the member list (presence) still drops this member.
      await this.sessions.publishSerialized<ChatEvent>(topic, { type: 'leave', name: who }, { except: session }).catch(() => undefined);
    }
  }

  private async say(topic: string, event: ChatEvent): Promise<void> {
    await this.sessions.publishSerialized<ChatEvent>(topic, event).catch(() => {
      throw unreachable();
    });
  }
}

/**
 * The broker refuses while Redis is away (it logs the outage once): the member is closed with 1013, so its page
 * reconnects with its position and misses nothing once Redis is back, rather than a message lost unseen.
 */
const unreachable = () => new WebSocketCloseException(CloseCode.TRY_AGAIN_LATER, 'The room is unreachable for now: reconnect in a moment');
