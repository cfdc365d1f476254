/** A JSON route: each `{ "op": "add" | "multiply", "values": [..] }` gets `{ "result": n }` back. */
import { Controller } from '@nestjs/common';
import { WebSocketDeserializeError, WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';

interface Calculation {
  op: 'add' | 'multiply';
  values: number[];
}

@Controller()
export class JsonController {
  /** Loops until the client closes: `receiveDeserialized` then rejects, which ends the handler normally. */
  @WebSocketRoute('json')
  async json(session: DefaultWebSocketServerSession): Promise<void> {
    for (;;) {
      let request: Calculation;
      try {
        request = await session.receiveDeserialized<Calculation>();
      } catch (error) {
        if (!(error instanceof WebSocketDeserializeError)) throw error;
        await session.sendSerialized({ error: error.message });
        continue;
      }
      const values = Array.isArray(request.values) ? request.values.map(Number) : [];
      if (request.op === 'add') await session.sendSerialized({ result: values.reduce((a, b) => a + b, 0) });
      else if (request.op === 'multiply') await session.sendSerialized({ result: values.reduce((a, b) => a * b, 1) });
      else await session.sendSerialized({ error: `unknown op ${String(request.op)}` });
    }
  }
}
