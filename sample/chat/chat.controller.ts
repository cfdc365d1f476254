/** Chat rooms on `/chat/rooms/:room` with the `chat.v1` subprotocol: every text is broadcast to the room. */
import { Controller } from '@nestjs/common';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { RoomsService } from './rooms.service.js';

@Controller('chat')
export class ChatController {
  constructor(private readonly rooms: RoomsService) {}

  @WebSocketRoute('rooms/:room', { protocol: 'chat.v1' })
  async room(session: DefaultWebSocketServerSession): Promise<void> {
    const room = session.call.params.room;
    const name = typeof session.call.query.name === 'string' ? session.call.query.name : 'anonymous';
    this.rooms.join(room, session);
    await this.rooms.broadcast(room, { type: 'join', name });
    try {
      for await (const frame of session.incoming) {
        await this.rooms.broadcast(room, { type: 'message', name, text: frame.readText() });
      }
    } finally {
      this.rooms.leave(room, session);
      await this.rooms.broadcast(room, { type: 'leave', name });
    }
  }
}
