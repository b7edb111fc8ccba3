/**
 * `npm run bridge [-- --config laravel-echo-server.json]`: forwards Laravel's Redis
 * broadcasts to the worker until SIGTERM or SIGINT, then flushes and exits 0.
 */
import { startBridge } from "./bridge.ts";
import { ConfigError, configFromEnv, describeConfig, type BridgeConfig } from "./config.ts";
import { stderrLogger as log } from "./log.ts";

let config: BridgeConfig;
try {
  config = configFromEnv(process.env, process.argv.slice(2));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  log.error(`configuration: ${error.message} (see docs/bridge.md)`);
  process.exit(2);
}

for (const line of describeConfig(config)) log.info(line);
const bridge = await startBridge(config, log);
log.info(`health: ${bridge.healthUrl}/health and /metrics`);

let signalled = false;
const shutdown = async (signal: string) => {
  if (signalled) return;
  signalled = true;
  log.info(`${signal}: stopping; flushing the buffer within ${config.shutdownTimeoutMs} ms`);
  await bridge.stop();
  const { forwarded, dropped } = bridge.stats().messages;
  log.info(`stopped; forwarded ${forwarded} messages, dropped ${Object.values(dropped).reduce((a, b) => a + b, 0)}`);
  process.exit(0);
};
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
