/**
 * The bridge as a library: Redis subscriber -> validation -> forwarder, plus the
 * health server and the prefix-mismatch check. `bridge/main.ts` runs it as a process.
 */
import type { BridgeConfig } from "./config.ts";
import { Forwarder, type ForwarderStats } from "./forwarder.ts";
import { startHealthServer, type HealthServer } from "./health.ts";
import { isPowerOfTen, stderrLogger, type Logger } from "./log.ts";
import { toWireMessage, type RejectionReason } from "./message.ts";
import { sampleChannels, Subscriber, type SubscriberStats } from "./subscriber.ts";

export interface BridgeStats {
  uptimeSeconds: number;
  redis: Omit<SubscriberStats, "since"> & { since: string };
  worker: Omit<ForwarderStats["worker"], "since"> & { since: string };
  messages: {
    received: number;
    forwarded: number;
    invalid: Record<RejectionReason, number>;
    dropped: ForwarderStats["dropped"];
  };
  buffer: ForwarderStats["buffer"] & { maxMessages: number; maxBytes: number };
  requests: ForwarderStats["requests"];
  /** The last warning or error logged. */
  lastError: { at: string; message: string } | null;
}

export interface RunningBridge {
  /** Where `/health` and `/metrics` answer. */
  healthUrl: string;
  stats(): BridgeStats;
  /** Stops reading Redis, flushes the buffer within the shutdown deadline, closes everything. */
  stop(): Promise<void>;
}

const SAMPLE_WINDOW_MS = 5000;
const SAMPLE_CHANNELS = 5;

function sample(payload: string): string {
  return payload.length > 80 ? JSON.stringify(payload.slice(0, 80)) + "..." : JSON.stringify(payload);
}

export async function startBridge(config: BridgeConfig, baseLog: Logger = stderrLogger): Promise<RunningBridge> {
  const startedAt = Date.now();
  let lastError: BridgeStats["lastError"] = null;
  const log: Logger = {
    info: baseLog.info,
    warn(message) {
      lastError = { at: new Date().toISOString(), message };
      baseLog.warn(message);
    },
    error(message) {
      lastError = { at: new Date().toISOString(), message };
      baseLog.error(message);
    },
  };

  let received = 0;
  const rejectionText: Record<RejectionReason, string> = {
    notJson: "not JSON",
    shapeless: 'not an object with a string "event" (and a "socket" that is a string or null)',
    tooLarge: `larger than MAX_MESSAGE_BYTES (${config.maxMessageBytes})`,
  };
  const invalid: Record<RejectionReason, number> = { notJson: 0, shapeless: 0, tooLarge: 0 };
  const forwarder = new Forwarder(config, log);
  const subscriber = new Subscriber(config, log, (channel, payload) => {
    received++;
    const message = toWireMessage(channel, payload, config.maxMessageBytes);
    if (typeof message === "string") {
      forwarder.enqueue(channel, message);
      return;
    }
    const count = ++invalid[message.reason];
    if (isPowerOfTen(count)) {
      const shown = message.reason === "tooLarge" ? `${Buffer.byteLength(payload)} bytes` : sample(payload);
      log.warn(
        `ignored a publish on "${channel}" that is ${rejectionText[message.reason]}: ${shown} ` +
          `(${count} such so far; logged again at ${count * 10})`,
      );
    }
  });

  const stats = (): BridgeStats => {
    const redis = subscriber.stats();
    const forwarding = forwarder.stats();
    return {
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      redis: { ...redis, since: new Date(redis.since).toISOString() },
      worker: { ...forwarding.worker, since: new Date(forwarding.worker.since).toISOString() },
      messages: { received, forwarded: forwarding.forwarded, invalid: { ...invalid }, dropped: forwarding.dropped },
      buffer: { ...forwarding.buffer, maxMessages: config.bufferMaxMessages, maxBytes: config.bufferMaxBytes },
      requests: forwarding.requests,
      lastError,
    };
  };

  let health: HealthServer;
  try {
    health = await startHealthServer(config.healthHost, config.healthPort, stats);
  } catch (error) {
    await subscriber.stop();
    await forwarder.flush(0);
    throw new Error(`cannot serve health on ${config.healthHost}:${config.healthPort} (BRIDGE_PORT): ${(error as Error).message}`);
  }

  // The classic laravel-echo-server mistake: a prefix that matches nothing Laravel publishes.
  const stopping = new AbortController();
  const checkPrefix = async () => {
    if (received > 0) return;
    const seen = await sampleChannels(config.redis, SAMPLE_WINDOW_MS, SAMPLE_CHANNELS, stopping.signal);
    const others = seen.filter((channel) => !channel.startsWith(config.prefix));
    if (received > 0 || others.length === 0) return;
    const guess = others.map((channel) => /^(.*?[_-]database[_-])/.exec(channel)?.[1]).find(Boolean);
    log.warn(
      `no publish matched ${subscriber.pattern} in ${config.prefixCheckMs / 1000} s, but Redis carries other channels: ` +
        `${others.map((channel) => JSON.stringify(channel)).join(", ")}. REDIS_PREFIX must equal Laravel's ` +
        `database.redis.options.prefix${guess ? ` (perhaps REDIS_PREFIX=${guess})` : ""}.`,
    );
  };
  const prefixTimer = config.prefixCheckMs > 0 ? setTimeout(checkPrefix, config.prefixCheckMs) : undefined;

  let stopped: Promise<void> | undefined;
  return {
    healthUrl: health.url,
    stats,
    stop() {
      stopped ??= (async () => {
        clearTimeout(prefixTimer);
        stopping.abort();
        await subscriber.stop();
        await forwarder.flush(config.shutdownTimeoutMs);
        await health.close();
      })();
      return stopped;
    },
  };
}
