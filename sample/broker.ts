/**
 * The sample's broker: with `REDIS_URL`, a RedisBroker, so instances on several ports share rooms; without it,
 * none (the in-process default: one instance, nothing more to install).
 */
import type { WebSocketBroker } from 'nest-websocket-routes';

/** `REDIS_URL`, when set and not empty. */
export const redisUrl = (): string | undefined => process.env.REDIS_URL || undefined;

export async function sampleBroker(): Promise<WebSocketBroker | undefined> {
  const url = redisUrl();
  if (url === undefined) return undefined;
  // Loaded only here, so an app run without REDIS_URL never needs the redis package.
  const { RedisBroker } = await import('nest-websocket-routes/redis');
  return new RedisBroker({ url });
}

/** For the startup log: which broker, without the URL's password. */
export function describeBroker(): string {
  const url = redisUrl();
  if (url === undefined) return 'in-process broker: one instance (set REDIS_URL to run several on one Redis)';
  return `Redis broker at ${url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')}: instances on the same Redis share rooms`;
}
