/**
 * Chat rooms on `/chat/rooms/:room` with the `chat.v1` subprotocol: every
 * text is broadcast to the room. Who is in a room is the sessions registry's
 * business: the sessions open on this route with the same `room` param.
 */
import { Controller, Param, Query } from '@nestjs/common';
import {
  WebSocketRoute,
  WebSocketSessions,
  WsSession,
  type DefaultWebSocketServerSession,
} from 'nest-websocket-routes';

type ChatEvent = { type: 'join' | 'leave'; name: string } | { type: 'message'; name: string; text: string };

@Controller('chat')
export class ChatController {
  constructor(private readonly sessions: WebSocketSessions) {}

  @WebSocketRoute('rooms/:room', { protocol: 'chat.v1' })
  async room(
    @WsSession() session: DefaultWebSocketServerSession,
    @Param('room') room: string,
    @Query('name') name: unknown,
  ): Promise<void> {
    const who = typeof name === 'string' && name !== '' ? name : 'anonymous';
    const inRoom = { route: session.call.route, params: { room } };
    await this.sessions.broadcastSerialized<ChatEvent>(inRoom, { type: 'join', name: who });
    try {
      // Each broadcast waits for the members' sockets (backpressure): a member that stops reading
      // slows the room until its ping times out (pingInterval + timeout in app.module.ts) and it is closed.
      for await (const frame of session.incoming) {
        await this.sessions.broadcastSerialized<ChatEvent>(inRoom, { type: 'message', name: who, text: frame.readText() });
      }
    } finally {
      const others = this.sessions.list(inRoom).filter((member) => member !== session);
      await this.sessions.broadcastSerialized<ChatEvent>(others, { type: 'leave', name: who });
    }
  }
}
