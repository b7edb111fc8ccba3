/**
 * The Redis side: `PSUBSCRIBE <prefix>*`, handing each publish on with the prefix
 * stripped, and resubscribing after every reconnect.
 *
 * ioredis can resubscribe by itself, but it does not say when that is done; the
 * bridge subscribes on every `ready` instead, so its state says `subscribed` only
 * once Redis has confirmed, and the gap can be logged.
 */
import { Redis, type RedisOptions } from "ioredis";
import { prefixPattern } from "../worker/publish/redis-prefix.ts";
import type { BridgeConfig, RedisConnection } from "./config.ts";
import type { Logger } from "./log.ts";

export type RedisState = "connecting" | "subscribed" | "disconnected" | "closed";

export interface SubscriberStats {
  state: RedisState;
  since: number;
  pattern: string;
  reconnects: number;
}

export function redisOptions(connection: RedisConnection): RedisOptions {
  return {
    host: connection.host,
    port: connection.port,
    db: connection.db,
    username: connection.username,
    password: connection.password,
    tls: connection.tls ? {} : undefined,
    // Retry at least every second, so a restarted Redis is resubscribed within ~1 s of answering.
    retryStrategy: (attempt) => Math.min(attempt * 50, 1000),
  };
}

export class Subscriber {
  readonly pattern: string;
  private readonly redis: Redis;
  private readonly log: Logger;
  private readonly where: string;
  private state: RedisState = "connecting";
  private since = Date.now();
  private reconnects = 0;
  /** An error already logged in the current outage; ioredis repeats it on every attempt. */
  private errorLogged = false;

  constructor(config: BridgeConfig, log: Logger, onMessage: (channel: string, payload: string) => void) {
    this.log = log;
    this.pattern = prefixPattern(config.prefix);
    this.where = `${config.redis.host}:${config.redis.port}`;
    const prefixLength = config.prefix.length;
    this.redis = new Redis({ ...redisOptions(config.redis), autoResubscribe: false });
    this.redis.on("pmessage", (_pattern: string, channel: string, payload: string) => {
      onMessage(channel.slice(prefixLength), payload);
    });
    this.redis.on("ready", () => this.subscribe());
    this.redis.on("close", () => this.lost());
    this.redis.on("error", (error: Error) => {
      if (this.errorLogged) return;
      this.errorLogged = true;
      this.log.warn(`Redis at ${this.where}: ${error.message}; retrying`);
    });
  }

  stats(): SubscriberStats {
    return { state: this.state, since: this.since, pattern: this.pattern, reconnects: this.reconnects };
  }

  /** Stops reading: messages Redis sent before QUIT's reply are still delivered. */
  async stop(): Promise<void> {
    this.setState("closed");
    if (this.redis.status === "ready") await this.redis.quit().catch(() => undefined);
    this.redis.disconnect();
  }

  private async subscribe(): Promise<void> {
    try {
      await this.redis.psubscribe(this.pattern);
    } catch (error) {
      // The connection dropped before Redis confirmed; the next `ready` tries again.
      this.log.warn(`PSUBSCRIBE ${this.pattern} failed: ${(error as Error).message}`);
      return;
    }
    if (this.state === "closed") return;
    const wasDown = this.state === "disconnected";
    const seconds = ((Date.now() - this.since) / 1000).toFixed(1);
    this.setState("subscribed");
    this.errorLogged = false;
    if (wasDown) {
      this.reconnects++;
      this.log.warn(
        `resubscribed to ${this.pattern} on ${this.where} after ${seconds} s without Redis; ` +
          `anything published in that gap was not received (Redis pub/sub keeps nothing)`,
      );
    } else {
      this.log.info(`subscribed to ${this.pattern} on ${this.where}`);
    }
  }

  private lost(): void {
    if (this.state !== "subscribed") return;
    this.setState("disconnected");
    this.log.warn(`lost the Redis connection to ${this.where}; reconnecting`);
  }

  private setState(state: RedisState): void {
    this.state = state;
    this.since = Date.now();
  }
}

/**
 * Listens to every channel on a separate connection for up to `windowMs` and
 * returns the names of up to `limit` channels that carried a publish. `PUBSUB
 * CHANNELS` cannot answer this: it lists only channels somebody subscribed to by
 * name, and Laravel publishes to channels nobody subscribes to that way.
 */
export async function sampleChannels(
  connection: RedisConnection,
  windowMs: number,
  limit: number,
  signal: AbortSignal,
): Promise<string[]> {
  const probe = new Redis({ ...redisOptions(connection), lazyConnect: true, retryStrategy: () => null });
  probe.on("error", () => undefined);
  const seen = new Set<string>();
  try {
    await probe.connect();
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, windowMs);
      signal.addEventListener("abort", done);
      probe.on("pmessage", (_pattern: string, channel: string) => {
        seen.add(channel);
        if (seen.size >= limit) done();
      });
      probe.psubscribe("*").catch(done);
    });
  } catch {
    // Redis is unreachable; the subscriber reports that already.
  } finally {
    probe.disconnect();
  }
  return [...seen];
}
