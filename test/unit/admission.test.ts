/**
 * Issue 9 item 3, inside workerd: MAX_CLIENTS slots are leases. A session whose
 * Worker died (it stops renewing) frees its slot after a few renewal intervals (one
 * minute each where MAX_CLIENTS is set; this test env sets none, so ten), a live one
 * keeps it whatever Worker version serves it, and the count survives the app
 * object's eviction.
 */
import { env, evictDurableObject } from "cloudflare:test";
import { afterEach, expect, it, vi } from "vitest";
import { leaseRenewalInterval } from "../../worker/engine/admission.ts";
import { readConfig } from "../../worker/config.ts";

const RENEWAL = leaseRenewalInterval(readConfig(env).maxClients);
let apps = 0;
const freshApp = () => env.APP.getByName(`admission-test-${apps++}`);

afterEach(() => vi.useRealTimers());

/** Moves the clock on by `ms` (the app object runs in this isolate, so it sees the same clock). */
function elapse(ms: number): void {
  vi.setSystemTime(Date.now() + ms);
}

it("a session that stops renewing gives its slot back after a few renewal intervals; one that renews keeps it", async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  const app = freshApp();
  expect(await app.admit("alive", 2)).toBe(true);
  expect(await app.admit("crashed", 2)).toBe(true);
  expect(await app.admit("newcomer", 2)).toBe(false);

  // Both were admitted under one Worker version; "alive" keeps renewing, "crashed" never does.
  for (let renewals = 0; renewals < 3; renewals++) {
    elapse(RENEWAL);
    await app.renew("alive");
  }
  expect(await app.admit("newcomer", 2)).toBe(true);
  expect(await app.admit("one too many", 2)).toBe(false);
  expect((await app.snapshot()).connections).toBe(2);
});

it("admitted sessions are still counted after the app object is evicted, and expire if nobody renews them", async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  const app = freshApp();
  expect(await app.admit("a", 2)).toBe(true);
  expect(await app.admit("b", 2)).toBe(true);
  await evictDurableObject(app);
  expect(await app.admit("c", 2)).toBe(false);
  expect((await app.snapshot()).connections).toBe(2);

  elapse(3 * RENEWAL);
  expect((await app.snapshot()).connections).toBe(0);
  expect(await app.admit("c", 2)).toBe(true);
});

it("a released session frees its slot at once", async () => {
  const app = freshApp();
  expect(await app.admit("a", 1)).toBe(true);
  expect(await app.hasRoom(1)).toBe(false);
  await app.release("a");
  expect(await app.hasRoom(1)).toBe(true);
  expect(await app.admit("b", 1)).toBe(true);
});
