/// <reference path="../../node_modules/@cloudflare/vitest-plugin/types/cloudflare-test.d.ts" />
import type { Env as WorkerEnv } from "../../worker/config.ts";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
  }
}
