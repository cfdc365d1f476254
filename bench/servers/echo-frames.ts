/** The echo every `ours` bench route runs: each frame sent back as it came, default or raw session alike. */
import type { WebSocketServerSession } from 'nest-websocket-routes';

export async function echoFrames(session: WebSocketServerSession): Promise<void> {
  for await (const frame of session.incoming) await session.send(frame);
}
