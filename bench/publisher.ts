/**
 * Publishes bench messages the way Laravel's RedisBroadcaster does: one PUBLISH of
 * `{"event","data":{...,"socket":null},"socket":null}` on `<prefix><channel>`.
 */
import { Redis } from "ioredis";
import { BENCH_EVENT } from "./ledger.ts";

export const REDIS_PREFIX = "laravel_database_";

export interface OutgoingMessage {
  channel: string;
  payload: string;
}

export function benchPayload(seq: number, sentAt: number, padding: string): string {
  const data = `{"seq":${seq},"sentAt":${sentAt.toFixed(3)},"text":"${padding}","socket":null}`;
  return `{"event":${JSON.stringify(BENCH_EVENT)},"data":${data},"socket":null}`;
}

/**
 * A message without a sequence number: published until every subscriber has seen
 * one (proof that subscriptions are live), then at the load's rate to warm both
 * servers up (JIT, buffers) before anything is measured.
 */
export function probePayload(padding: string): string {
  return `{"event":${JSON.stringify(BENCH_EVENT)},"data":{"probe":true,"text":"${padding}","socket":null},"socket":null}`;
}

export class RedisPublisher {
  readonly #redis: Redis;

  constructor(host: string, port: number) {
    this.#redis = new Redis({ host, port, lazyConnect: true, enableAutoPipelining: false });
  }

  async connect(): Promise<void> {
    await this.#redis.connect();
  }

  /** One pipeline: the messages reach Redis in order, in as few writes as possible. */
  async publish(messages: OutgoingMessage[]): Promise<void> {
    const pipeline = this.#redis.pipeline();
    for (const message of messages) pipeline.publish(REDIS_PREFIX + message.channel, message.payload);
    const results = await pipeline.exec();
    const failed = results?.find(([error]) => error);
    if (failed) throw failed[0];
  }

  async close(): Promise<void> {
    await this.#redis.quit();
  }
}
