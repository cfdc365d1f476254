/**
 * Guards before the 101, answering in every way Nest lets them: a boolean
 * (settled at once), a promise, an observable, or a throw; one after the
 * other on one ExecutionContext, the first no refusing with Nest's 403
 * "Forbidden resource" and leaving the guards after it uncalled, whether
 * the ones before answered at once or later.
 */
import 'reflect-metadata';
import {
  Controller,
  Injectable,
  UnauthorizedException,
  UseGuards,
  type CanActivate,
  type ExecutionContext,
  type Type,
} from '@nestjs/common';
import { of, type Observable } from 'rxjs';
import { WebSocketRoute, type DefaultWebSocketServerSession } from 'nest-websocket-routes';
import { sleep } from '../support/async.js';
import { ClientTracker } from '../support/client-tracker.js';
import { PLATFORMS, startApp, type TestApp } from '../support/nest-app.js';
import { RawClient } from '../support/raw-client.js';
import { WsClient } from '../support/ws-client.js';

const FORBIDDEN_BODY = { message: 'Forbidden resource', error: 'Forbidden', statusCode: 403 };

/** Which guards ran, in order, and the contexts they were given. */
const calls: string[] = [];
const contexts: ExecutionContext[] = [];

function guard(name: string, answer: () => boolean | Promise<boolean> | Observable<boolean>): Type<CanActivate> {
  @Injectable()
  class NamedGuard implements CanActivate {
    canActivate(context: ExecutionContext): boolean | Promise<boolean> | Observable<boolean> {
      calls.push(name);
      contexts.push(context);
      return answer();
    }
  }
  return NamedGuard;
}

const Yes = guard('yes', () => true);
const No = guard('no', () => false);
const LaterYes = guard('later yes', async () => {
  await sleep(5);
  return true;
});
const LaterNo = guard('later no', async () => {
  await sleep(5);
  return false;
});
const ObservedYes = guard('observed yes', () => of(true));
const ObservedNo = guard('observed no', () => of(false));
const Throws = guard('throws', () => {
  throw new UnauthorizedException('no token');
});
const GUARDS = [Yes, No, LaterYes, LaterNo, ObservedYes, ObservedNo, Throws];

async function echo(session: DefaultWebSocketServerSession): Promise<void> {
  for await (const frame of session.incoming) await session.send(frame);
}

@Controller()
class GuardedController {
  @WebSocketRoute('yes-yes')
  @UseGuards(Yes, Yes)
  yesYes(session: DefaultWebSocketServerSession): Promise<void> {
    return echo(session);
  }

  @WebSocketRoute('yes-no-yes')
  @UseGuards(Yes, No, Yes)
  yesNoYes(session: DefaultWebSocketServerSession): Promise<void> {
    return echo(session);
  }

  @WebSocketRoute('later-yes-then-no')
  @UseGuards(LaterYes, No, Yes)
  laterYesThenNo(session: DefaultWebSocketServerSession): Promise<void> {
    return echo(session);
  }

  @WebSocketRoute('yes-later-yes-observed-yes')
  @UseGuards(Yes, LaterYes, ObservedYes)
  allYes(session: DefaultWebSocketServerSession): Promise<void> {
    return echo(session);
  }

  @WebSocketRoute('later-no')
  @UseGuards(LaterNo, Yes)
  laterNo(session: DefaultWebSocketServerSession): Promise<void> {
    return echo(session);
  }

  @WebSocketRoute('observed-no')
  @UseGuards(Yes, ObservedNo, Yes)
  observedNo(session: DefaultWebSocketServerSession): Promise<void> {
    return echo(session);
  }

  @WebSocketRoute('throws')
  @UseGuards(Yes, Throws, Yes)
  throws(session: DefaultWebSocketServerSession): Promise<void> {
    return echo(session);
  }
}

describe.each(PLATFORMS)('route guards on %s', (platform) => {
  let t: TestApp;
  const clients = new ClientTracker();

  beforeAll(async () => (t = await startApp([GuardedController], {}, GUARDS, { platform })));
  beforeEach(() => {
    calls.length = 0;
    contexts.length = 0;
  });
  afterEach(() => clients.dropAll());
  afterAll(() => t.close());

  async function refusal(path: string): Promise<{ status: number; body: unknown }> {
    const { client, response } = await RawClient.open(t.port, path);
    clients.track(client);
    return { status: response.status, body: JSON.parse(response.body) };
  }

  async function echoes(path: string): Promise<void> {
    const client = clients.track(await WsClient.connect(t.url(path)));
    client.ws.send('ping');
    expect((await client.next()).data.toString()).toBe('ping');
  }

  it('lets the upgrade through when every guard says yes at once, one context for all', async () => {
    await echoes('/yes-yes');
    expect(calls).toEqual(['yes', 'yes']);
    expect(contexts[1]).toBe(contexts[0]);
  });

  it('lets it through when they say yes at once, later and through an observable, one context for all', async () => {
    await echoes('/yes-later-yes-observed-yes');
    expect(calls).toEqual(['yes', 'later yes', 'observed yes']);
    expect(new Set(contexts).size).toBe(1);
  });

  it('refuses with 403 at the first no, calling no guard after it', async () => {
    expect(await refusal('/yes-no-yes')).toEqual({ status: 403, body: FORBIDDEN_BODY });
    expect(calls).toEqual(['yes', 'no']);
  });

  it('refuses at a no that comes after a guard that answered later, on the same context', async () => {
    expect(await refusal('/later-yes-then-no')).toEqual({ status: 403, body: FORBIDDEN_BODY });
    expect(calls).toEqual(['later yes', 'no']);
    expect(contexts[1]).toBe(contexts[0]);
  });

  it('refuses at a no that comes later, or through an observable', async () => {
    expect(await refusal('/later-no')).toEqual({ status: 403, body: FORBIDDEN_BODY });
    expect(calls).toEqual(['later no']);
    calls.length = 0;
    expect(await refusal('/observed-no')).toEqual({ status: 403, body: FORBIDDEN_BODY });
    expect(calls).toEqual(['yes', 'observed no']);
  });

  it("answers a guard's exception with its own status", async () => {
    expect(await refusal('/throws')).toEqual({
      status: 401,
      body: { message: 'no token', error: 'Unauthorized', statusCode: 401 },
    });
    expect(calls).toEqual(['yes', 'throws']);
  });
});
