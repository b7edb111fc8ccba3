/** The real bridge, in-process, on the shared Redis, forwarding to a test worker. */
import { expect } from "vitest";
import { startBridge, type RunningBridge } from "../../bridge/bridge.ts";
import { configFromEnv } from "../../bridge/config.ts";
import type { Logger } from "../../bridge/log.ts";
import { until } from "./clients.ts";
import { BRIDGE_SECRET } from "./stack.ts";

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

/**
 * Starts a bridge subscribed to `prefix*` (a prefix of its own keeps other test
 * files' publishes away from it) and waits until it is subscribed.
 */
export async function startTestBridge(echoUrl: string, prefix: string, env: Record<string, string> = {}): Promise<RunningBridge> {
  const bridge = await startBridge(
    configFromEnv({
      BRIDGE_SECRET,
      ECHO_URL: echoUrl,
      REDIS_URL: "redis://127.0.0.1:6379",
      REDIS_PREFIX: prefix,
      BRIDGE_PORT: "0",
      BRIDGE_PREFIX_CHECK_SECONDS: "0",
      ...env,
    }),
    quiet,
  );
  await until(() => expect(bridge.stats().redis.state).toBe("subscribed"));
  return bridge;
}
