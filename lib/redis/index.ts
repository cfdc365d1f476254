/**
 * `nest-websocket-routes/redis`: the Redis broker, an entry point of its own so that an application without
 * Redis installs and loads nothing more. Needs the `redis` package (node-redis 5 or later) and Redis 7.
 */
export { RedisBroker, type RedisBrokerOptions } from './redis.broker.js';
