/**
 * The chat's rooms as topics: `room:<room>`, with presence (the member list) and a history whose positions
 * go into every message, so a page that reconnects (to any instance) asks for what it missed.
 */
import type { TopicOptions } from 'nest-websocket-routes';

export const roomTopic = (room: string): string => `room:${room}`;

export const isRoomTopic = (topic: string): boolean => topic.startsWith('room:');

export const ROOM_TOPICS: TopicOptions = {
  match: isRoomTopic,
  presence: true,
  // Enough to bridge a dropped connection or an instance's restart; older gaps get fresh state instead.
  history: { size: 500, ttl: 10 * 60_000 },
  // The route publishes ChatEvent values: subscribers get each as JSON with its position added.
  envelope: (message) => JSON.stringify({ ...(message.type === 'value' ? (message.value as object) : {}), position: message.position }),
};
