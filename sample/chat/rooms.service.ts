/** Who is in which chat room, and sending to everyone in a room. */
import { Injectable } from '@nestjs/common';
import type { WebSocketSession } from 'nest-websocket-routes';

@Injectable()
export class RoomsService {
  private readonly rooms = new Map<string, Set<WebSocketSession>>();

  join(room: string, session: WebSocketSession): void {
    let members = this.rooms.get(room);
    if (members === undefined) this.rooms.set(room, (members = new Set()));
    members.add(session);
  }

  leave(room: string, session: WebSocketSession): void {
    const members = this.rooms.get(room);
    members?.delete(session);
    if (members?.size === 0) this.rooms.delete(room);
  }

  /** Sends to every member; a member whose connection just went away is skipped. */
  async broadcast(room: string, value: unknown): Promise<void> {
    const members = [...(this.rooms.get(room) ?? [])];
    await Promise.allSettled(members.map((member) => member.sendSerialized(value)));
  }
}
