import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        // Inside workerd: protocol codec, Durable Objects (hibernation/eviction), routes.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                CLIENTS: JSON.stringify([{ appId: "app", key: "secret-key" }]),
                BRIDGE_SECRET: "bridge-secret",
                PRESENCE_LEAVE_GRACE: "200",
              },
            },
          }),
        ],
        test: { name: "workerd", include: ["test/unit/**/*.test.ts"] },
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
