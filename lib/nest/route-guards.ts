/**
 * A route's guards, run before the 101 as Nest runs an HTTP route's
 * (GuardsConsumer.tryActivate, then 403 "Forbidden resource" on a no): in
 * order, on one ExecutionContext, the first no or failure refusing. Unlike
 * Nest's, without a promise while the guards answer with booleans, as a
 * guard that checks a header or a token does: the 101 then goes out in the
 * same turn, without the three async functions (and their promises) of
 * Nest's path. The first guard that answers with a promise or an observable
 * is settled by Nest's own GuardsConsumer.pickResult, and so are the rest.
 */
import { ForbiddenException, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { FORBIDDEN_MESSAGE, type GuardsConsumer } from '@nestjs/core/internal';

/** Checks one upgrade's `[request, response, next]`: returns when let through, throws (or rejects) when refused. */
export type GuardCheck = (httpArgs: unknown[]) => void | Promise<void>;

// Nest's context takes any handler; the method's own signature is the user's business.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Handler = (...args: any[]) => any;

/** The check for a route's guards, or undefined when it has none. */
export function guardCheck(guards: CanActivate[], consumer: GuardsConsumer, instance: object, method: Handler): GuardCheck | undefined {
  if (guards.length === 0) return undefined;
  /** The guards from `index` on, once one answered with something other than a boolean. */
  const settleFrom = async (index: number, pending: ReturnType<CanActivate['canActivate']>, context: ExecutionContext): Promise<void> => {
    if (!(await consumer.pickResult(pending))) throw new ForbiddenException(FORBIDDEN_MESSAGE);
    for (let next = index + 1; next < guards.length; next++) {
      const result = guards[next].canActivate(context);
      const allowed = typeof result === 'boolean' ? result : await consumer.pickResult(result);
      if (!allowed) throw new ForbiddenException(FORBIDDEN_MESSAGE);
    }
  };
  return (httpArgs) => {
    const context = consumer.createContext(httpArgs, instance, method);
    context.setType('http');
    for (let index = 0; index < guards.length; index++) {
      const result = guards[index].canActivate(context);
      if (typeof result !== 'boolean') return settleFrom(index, result, context);
      if (!result) throw new ForbiddenException(FORBIDDEN_MESSAGE);
    }
  };
}
