/** Remembers the clients a test opened, so `afterEach` drops them whatever happened. */

type Droppable = { destroy(): void } | { terminate(): void };

export class ClientTracker {
  private readonly opened: Droppable[] = [];

  track<T extends Droppable>(client: T): T {
    this.opened.push(client);
    return client;
  }

  dropAll(): void {
    for (const client of this.opened.splice(0)) {
      if ('destroy' in client) client.destroy();
      else client.terminate();
    }
  }
}
