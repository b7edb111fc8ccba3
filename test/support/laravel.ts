/** What Laravel's RedisBroadcaster sends to Redis, for tests that play Laravel. */

/** The EVAL script Laravel (6.x+) uses to publish one payload to several channels. */
export const LARAVEL_MULTI_CHANNEL_SCRIPT = "for i = 2, #ARGV do\n  redis.call('publish', ARGV[i], ARGV[1])\nend";
