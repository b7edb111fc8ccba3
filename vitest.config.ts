import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

const UNIT_BINDINGS = {
  CLIENTS: JSON.stringify([{ appId: "app", key: "secret-key" }]),
  BRIDGE_SECRET: "bridge-secret",
  PRESENCE_LEAVE_GRACE: "200",
  RECOVERY_WINDOW: "1000",
  RECOVERY_HISTORY_BATCHES: "10",
};
/** Unit tests whose channels deliver to DeliveryProbe hosts. */
const CHANNEL_TESTS = [
  "test/unit/channel.test.ts",
  "test/unit/channel-fanout.test.ts",
  "test/unit/channel-recovery.test.ts",
  "test/unit/publish-replay.test.ts",
];

export default defineConfig({
  test: {
    projects: [
      {
        // Inside workerd: protocol codec, Durable Objects (hibernation/eviction), routes.
        plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" }, miniflare: { bindings: UNIT_BINDINGS } })],
        test: { name: "workerd", include: ["test/unit/**/*.test.ts"], exclude: CHANNEL_TESTS },
      },
      {
        // Channel objects inside workerd, delivering to probes bound as HOST (test/unit/delivery-probe.ts) that count their deliveries.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            main: "./test/unit/delivery-probe.ts",
            miniflare: { bindings: UNIT_BINDINGS, durableObjects: { HOST: "DeliveryProbe" } },
          }),
        ],
        test: { name: "workerd-channels", include: CHANNEL_TESTS },
      },
      {
        // From Node against real processes: wrangler dev, Redis, the bridge, real clients.
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts", "test/e2e/**/*.test.ts"],
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 90_000,
          fileParallelism: true,
        },
      },
    ],
  },
});
