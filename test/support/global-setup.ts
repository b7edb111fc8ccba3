/**
 * One Redis, one Laravel auth fixture and one worker (on the local edge, as `npm
 * start` serves it: test/support/worker.ts) shared by the Node test files; their
 * addresses reach tests through `inject()`. Redis and the
 * dashboard test's Chromium are installed first when the machine lacks them.
 */
import type { TestProject } from "vitest/node";
import { startLaravelAuth } from "../fixtures/laravel-auth.ts";
import { ensureChromium } from "../../scripts/ensure-chromium.ts";
import { ensureRedis } from "../../scripts/ensure-redis.ts";
import { startWorker } from "./worker.ts";
import { TEST_APP, TEST_VARS } from "./stack.ts";

export default async function setup(project: TestProject) {
  await ensureRedis();
  ensureChromium();
  const auth = await startLaravelAuth();
  const worker = await startWorker({ ...TEST_VARS, AUTH_HOST: auth.url });
  project.provide("workerUrl", worker.url);
  project.provide("authUrl", auth.url);
  project.provide("testApp", TEST_APP);
  return async () => {
    await worker.stop();
    await auth.close();
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    workerUrl: string;
    authUrl: string;
    testApp: { appId: string; key: string };
  }
}
