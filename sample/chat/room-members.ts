/**
 * Keeps the member list of every page in a room right, across instances: on each presence join or leave of a
 * room (wherever the member is, a dead instance's members included, as its expired presence is swept), the
 * room's presence is read again and sent to this instance's members of that room as one `members` message.
 */
import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { WebSocketSessions, type PresenceEntry } from 'nest-websocket-routes';
import type { MemberData, Members } from './chat-protocol.js';
import { isRoomTopic } from './room-topics.js';

/** After a failed read (Redis away), when to read again: no later join or leave may come to trigger it. */
const RETRY_MS = 2_000;

@Injectable()
export class RoomMembers implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(RoomMembers.name);
  /** Rooms whose presence is being read and sent; `again`: something changed since that read began. */
  private readonly refreshing = new Map<string, { again: boolean }>();
  /** Rooms whose last read failed: warned once until a read works again, not every retry of an outage. */
  private readonly failing = new Set<string>();
  private readonly retries = new Set<NodeJS.Timeout>();
  private stopListening: (() => void) | undefined;

  constructor(private readonly sessions: WebSocketSessions) {}

  onModuleInit(): void {
    this.stopListening = this.sessions.onPresence((event) => {
      if (isRoomTopic(event.topic)) this.refresh(event.topic);
    });
  }

  onModuleDestroy(): void {
    this.stopListening?.();
    this.stopListening = undefined;
    for (const timer of this.retries) clearTimeout(timer);
  }

  /** Sends this instance's members of `topic` the members as read after this call. */
  refresh(topic: string): void {
    const running = this.refreshing.get(topic);
    if (running !== undefined) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.refreshing.set(topic, state);
    void this.send(topic, state);
  }

  /**
   * One read at a time per room, and again while changes came in meanwhile, so the last list every member
   * gets was read after the last change: concurrent reads could otherwise arrive out of order.
   */
  private async send(topic: string, state: { again: boolean }): Promise<void> {
    try {
      do {
        state.again = false;
        const message: Members = { type: 'members', members: membersOf(await this.sessions.presence(topic)) };
        await this.sessions.broadcast((session) => session.isSubscribed(topic), JSON.stringify(message));
      } while (state.again);
      this.failing.delete(topic);
    } catch (error) {
      if (!this.failing.has(topic)) {
        this.failing.add(topic);
        this.logger.warn(`Could not read who is in ${JSON.stringify(topic)} (${(error as Error).message}): trying again every ${RETRY_MS} ms`);
      }
      // Shutting down (the broker stops after the sessions close): nobody is left to tell.
      if (this.stopListening === undefined) return;
      const timer = setTimeout(() => {
        this.retries.delete(timer);
        if (this.sessions.find((session) => session.isSubscribed(topic)) !== undefined) this.refresh(topic);
      }, RETRY_MS);
      this.retries.add(timer);
    } finally {
      this.refreshing.delete(topic);
    }
  }
}

function membersOf(entries: PresenceEntry[]): Members['members'] {
  return entries.map((entry) => ({ name: String((entry.data as MemberData | undefined)?.name ?? 'anonymous') })).sort((a, b) => a.name.localeCompare(b.name));
}
