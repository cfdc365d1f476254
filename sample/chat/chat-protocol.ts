/** The JSON texts the chat route sends (documented in chat.controller.ts), as types the sample's parts share. */
import type { StreamPosition } from 'nest-websocket-routes';

/** What the route publishes to a room's topic; subscribers receive it with its `position` (see room-topics.ts). */
export type ChatEvent = { type: 'join' | 'leave'; name: string } | { type: 'message'; name: string; text: string };

/** Sent once to a member when its subscription began. */
export interface Welcome {
  type: 'welcome';
  recovered: boolean;
  position: StreamPosition | undefined;
}

/** The room's members on every instance, sent whenever they change; replaces the previous list. */
export interface Members {
  type: 'members';
  members: { name: string }[];
}

/** What a member is in the room's presence (`session.subscribe(topic, { data })`). */
export interface MemberData {
  name: string;
}
