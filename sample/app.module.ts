/** The sample application: one module with the echo, raw echo, chat and JSON routes, and the chat page at `/`. */
import { Module } from '@nestjs/common';
import { WebSocketsModule } from 'nest-websocket-routes';
import { sampleBroker } from './broker.js';
import { ChatController } from './chat/chat.controller.js';
import { RoomMembers } from './chat/room-members.js';
import { ROOM_TOPICS } from './chat/room-topics.js';
import { EchoController } from './echo.controller.js';
import { JsonController } from './json.controller.js';
import { PageController } from './page.controller.js';

/** What `npm start` prints: path and what the route does. */
export const SAMPLE_ROUTES: ReadonlyArray<[string, string]> = [
  ['/echo', 'echo (default session)'],
  ['/raw-echo', 'echo in a raw session that runs its own close sequence'],
  ['/chat/rooms/lobby?name=you', 'chat room /chat/rooms/:room, subprotocol chat.v1'],
  ['/json', 'JSON request/response with sendSerialized / receiveDeserialized'],
];

@Module({
  imports: [
    // Async: the broker comes from REDIS_URL, and the Redis one is imported only when it is set.
    WebSocketsModule.forRootAsync({
      useFactory: async () => ({
        pingInterval: 30_000,
        timeout: 15_000,
        maxFrameSize: 64 * 1024 * 1024,
        // Browsers offer permessage-deflate: their messages come compressed, ours from 1 KiB on. Default
        // sessions only: /raw-echo shows frames as they came off the wire, so it negotiates no extension.
        deflate: true,
        broker: await sampleBroker(),
        topics: [ROOM_TOPICS],
      }),
    }),
  ],
  controllers: [EchoController, ChatController, JsonController, PageController],
  providers: [RoomMembers],
})
export class AppModule {}
