/** Echo routes: a default session, and a raw one that does by hand what the default one does for you. */
import { Controller } from '@nestjs/common';
import {
  CloseReason,
  Frame,
  FrameType,
  WebSocketRoute,
  type DefaultWebSocketServerSession,
  type WebSocketServerSession,
} from 'nest-websocket-routes';

@Controller()
export class EchoController {
  @WebSocketRoute('echo')
  async echo(session: DefaultWebSocketServerSession): Promise<void> {
    for await (const frame of session.incoming) await session.send(frame);
  }

  /**
   * Answers pings, echoes each fragment as it came, and echoes the peer's Close before returning.
   * Raw, so the module's `deflate` is not offered here: that would take `negotiateExtensions: true`.
   */
  @WebSocketRoute('raw-echo', { raw: true })
  async rawEcho(session: WebSocketServerSession): Promise<void> {
    for await (const frame of session.incoming) {
      switch (frame.frameType) {
        case FrameType.PING:
          await session.send(new Frame.Pong(frame.data));
          break;
        case FrameType.PONG:
          break;
        case FrameType.CLOSE:
          await session.send(new Frame.Close(frame.readReason() ?? new CloseReason(CloseReason.Codes.NORMAL)));
          return;
        default:
          await session.send(frame);
      }
    }
  }
}
