/**
 * The Lua scripts of the Redis broker: each step that must not interleave
 * with another process's runs inside Redis at once (a history publish
 * takes its offset, appends and publishes in one step, so the channel's
 * order is the offsets' order). Times come from Redis's clock, one for all.
 */
import { createHash } from 'node:crypto';

export class RedisScript {
  readonly sha: string;

  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

/** Milliseconds now by Redis's clock, as a string Lua will not print in exponent form. */
const NOW_MS = `
local clock = redis.call('TIME')
local now = tonumber(clock[1] .. string.format('%03d', math.floor(clock[2] / 1000)))
`;

/** Makes the topic's epoch if it has none (then its history, of an older epoch, goes). ARGV[newEpoch] names it. */
const ENSURE_EPOCH = (newEpoch: string) => `
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ${newEpoch}
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', epoch, 'o', 0)
end
`;

/**
 * KEYS: history stream, meta hash. ARGV: channel, kind, except, body, size, ttl ms, meta ttl ms, a new epoch.
 * Returns { offset, epoch }.
 */
export const PUBLISH_WITH_HISTORY = new RedisScript(`${NOW_MS}${ENSURE_EPOCH('ARGV[8]')}
local offset = redis.call('HINCRBY', KEYS[2], 'o', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[5], offset .. '-0', 'k', ARGV[2], 'x', ARGV[3], 'd', ARGV[4], 't', string.format('%d', now))
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('SPUBLISH', ARGV[1], ARGV[2] .. '|' .. ARGV[3] .. '|' .. offset .. '|' .. epoch .. '\\n' .. ARGV[4])
return { offset, epoch }
`);

/**
 * KEYS: history stream, meta hash. ARGV: since offset ('' for none), since epoch, a new epoch, meta ttl ms.
 * Returns { epoch, top offset, now ms, entries after since (when in this epoch) }.
 */
export const READ_HISTORY = new RedisScript(`${NOW_MS}${ENSURE_EPOCH('ARGV[3]')}
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local top = tonumber(redis.call('HGET', KEYS[2], 'o'))
local entries = {}
if ARGV[1] ~= '' and ARGV[2] == epoch and tonumber(ARGV[1]) < top then
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1] .. '-0', '+')
end
return { epoch, top, string.format('%d', now), entries }
`);

/**
 * Removes the processes whose presence expired (they stopped heartbeating: killed, say) from the topic
 * and tells its channel each of their entries left. KEYS[1]: the processes' sorted set; ARGV[1]: channel.
 */
const SWEEP_PRESENCE = `
local prefix = KEYS[1] .. ':'
for _, process in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  for _, entry in ipairs(redis.call('HVALS', prefix .. process)) do
    redis.call('SPUBLISH', ARGV[1], 'l|||\\n' .. entry)
  end
  redis.call('DEL', prefix .. process)
  redis.call('ZREM', KEYS[1], process)
end
`;

/** Marks a process present until now + ttl, its entries kept twice as long so a sweep can still tell who left. */
const HEARTBEAT = `
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], 2 * tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[3]))
`;

/** KEYS: processes set, this process's entries. ARGV: channel, process id, ttl ms. */
export const PRESENCE_HEARTBEAT = new RedisScript(`${NOW_MS}${SWEEP_PRESENCE}
if redis.call('EXISTS', KEYS[2]) == 1 then
${HEARTBEAT}
end
return 1
`);

/**
 * KEYS: processes set, this process's entries. ARGV: channel, process id, ttl ms, session id, entry JSON.
 * Tells the channel only of an entry that was not there (joining again after an outage is quiet).
 */
export const PRESENCE_JOIN = new RedisScript(`${NOW_MS}
local added = redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
${HEARTBEAT}
if added == 1 then redis.call('SPUBLISH', ARGV[1], 'j|||\\n' .. ARGV[5]) end
return added
`);

/** KEYS: processes set, this process's entries. ARGV: channel, process id, session id. */
export const PRESENCE_LEAVE = new RedisScript(`
local entry = redis.call('HGET', KEYS[2], ARGV[3])
if not entry then return 0 end
redis.call('HDEL', KEYS[2], ARGV[3])
if redis.call('HLEN', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[2]) end
redis.call('SPUBLISH', ARGV[1], 'l|||\\n' .. entry)
return 1
`);

/** KEYS[1]: processes set. ARGV[1]: channel. Returns every live entry as JSON. */
export const PRESENCE_READ = new RedisScript(`${NOW_MS}${SWEEP_PRESENCE}
local entries = {}
for _, process in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  for _, entry in ipairs(redis.call('HVALS', KEYS[1] .. ':' .. process)) do
    entries[#entries + 1] = entry
  end
end
return entries
`);

/** Every script, for loading them into a Redis on connecting. */
export const SCRIPTS = [PUBLISH_WITH_HISTORY, READ_HISTORY, PRESENCE_HEARTBEAT, PRESENCE_JOIN, PRESENCE_LEAVE, PRESENCE_READ];
