/** What Laravel's RedisBroadcaster sends to Redis, for tests that play Laravel. */
import type { Redis } from "ioredis";

/** The EVAL script Laravel (6.x+) uses to publish one payload to several channels. */
export const LARAVEL_MULTI_CHANNEL_SCRIPT = "for i = 2, #ARGV do\n  redis.call('publish', ARGV[i], ARGV[1])\nend";

/**
 * What `broadcast(new Event(...))` does with Laravel's Redis broadcaster: one EVAL
 * publishing the payload (`socket` inside `data` too) to every channel, prefixed.
 */
export function laravelBroadcast(
  redis: Redis,
  prefix: string,
  channels: string[],
  event: string,
  data: Record<string, unknown>,
  socket: string | null = null,
): Promise<unknown> {
  const payload = JSON.stringify({ event, data: { ...data, socket }, socket });
  return redis.eval(LARAVEL_MULTI_CHANNEL_SCRIPT, 0, payload, ...channels.map((channel) => prefix + channel));
}
