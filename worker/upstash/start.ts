/**
 * Starting the Upstash subscriber object: from the cron trigger, and from the first
 * request each isolate serves, so it runs after a deploy without waiting for the
 * cron and without costing a Durable Object call on every request.
 */
import { readConfig, type Env } from "../config.ts";
import { createLogger } from "../log.ts";

let startedInThisIsolate = false;

export async function startUpstashSubscriber(env: Env): Promise<void> {
  const upstash = readConfig(env).upstash;
  if (upstash) await env.UPSTASH.getByName(upstash.appId).ensureRunning();
}

/** Once per isolate, in the background of the request that triggers it; retried by the next request if it fails. */
export function startUpstashSubscriberOnce(env: Env, ctx: ExecutionContext): void {
  if (startedInThisIsolate) return;
  startedInThisIsolate = true;
  ctx.waitUntil(
    startUpstashSubscriber(env).catch((error: unknown) => {
      startedInThisIsolate = false;
      // Warnings print whatever DEV_MODE says, and the config itself may be what failed.
      createLogger(false).warn("upstash_start_failed", { error: String(error) });
    }),
  );
}
