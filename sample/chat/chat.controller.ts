/**
 * Chat rooms on `/chat/rooms/:room` with the `chat.v1` subprotocol: each
 * member subscribes to its room's topic, and every text is published there.
 * Topics are per process for now: run one instance.
 */
import { Controller, Param, Query } from '@nestjs/common';
import {
  CloseCode,
  WebSocketCloseException,
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
    const topic = `room:${room}`;
    // A room name over the topic limit (256 bytes) is the client's to fix: 1008, not an error of ours.
    await session.subscribe(topic).catch((error: Error) => {
      throw new WebSocketCloseException(CloseCode.VIOLATED_POLICY, error.message);
    });
    await this.sessions.publishSerialized<ChatEvent>(topic, { type: 'join', name: who });
    try {
      // Each publish waits for the members' sockets (backpressure): a member that stops reading
      // slows the room until its ping times out (pingInterval + timeout in app.module.ts) and it is closed.
      for await (const frame of session.incoming) {
        await this.sessions.publishSerialized<ChatEvent>(topic, { type: 'message', name: who, text: frame.readText() });
      }
    } finally {
      await this.sessions.publishSerialized<ChatEvent>(topic, { type: 'leave', name: who }, { except: session });
    }
  }
}
