/**
 * Durable Object request metering (worker/metering.ts) inside workerd: with
 * METER_REQUESTS=true each call of a listed entry point logs one `do_request` line
 * and a method the object calls on itself logs none; without it nothing is logged.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { DurableObject } from "cloudflare:workers";
import { afterEach, expect, it, vi } from "vitest";
import type { Env } from "../../worker/config.ts";
import { AppObject } from "../../worker/index.ts";
import { metered } from "../../worker/metering.ts";

class Counter extends DurableObject<Env> {
  private count = 0;

  override async fetch(): Promise<Response> {
    return new Response(String(this.bump(1)));
  }

  add(by: number): number {
    return this.bump(by);
  }

  override async alarm(): Promise<void> {
    this.bump(1);
  }

  private bump(by: number): number {
    return (this.count += by);
  }
}

const MeteredCounter = metered("Counter", Counter, ["fetch", "add", "alarm"]);

afterEach(() => vi.restoreAllMocks());

/** The `do_request` lines logged while `run` ran, as [object, entry]. */
async function requestsDuring(run: () => Promise<void>): Promise<string[][]> {
  const log = vi.spyOn(console, "log").mockImplementation(() => {});
  await run();
  return log.mock.calls
    .map(([line]) => JSON.parse(String(line)) as { event: string; object: string; entry: string })
    .filter((line) => line.event === "do_request")
    .map((line) => [line.object, line.entry]);
}

/** A real DurableObjectState to construct objects with (the app object's; these tests touch only memory and its startedAt). */
function withState<T>(run: (state: DurableObjectState) => Promise<T>): Promise<T> {
  return runInDurableObject(env.APP.getByName("metering-test"), (_instance, state) => run(state));
}

it("logs one line per entry point called, none for a method the object calls on itself", async () => {
  const lines = await withState((state) =>
    requestsDuring(async () => {
      const counter = new MeteredCounter(state, { ...env, METER_REQUESTS: "true" });
      expect(counter).toBeInstanceOf(DurableObject);
      expect(await (await counter.fetch()).text()).toBe("1");
      expect(counter.add(2)).toBe(3);
      await counter.alarm();
    }),
  );
  expect(lines).toEqual([
    ["Counter", "fetch"],
    ["Counter", "add"],
    ["Counter", "alarm"],
  ]);
});

it("logs nothing without METER_REQUESTS", async () => {
  const lines = await withState((state) =>
    requestsDuring(async () => {
      const counter = new MeteredCounter(state, env);
      await counter.fetch();
      counter.add(2);
      await counter.alarm();
    }),
  );
  expect(lines).toEqual([]);
});

it("the Worker exports metered classes: an app object's RPC logs its entry point", async () => {
  const lines = await withState((state) =>
    requestsDuring(async () => {
      const app = new AppObject(state, { ...env, METER_REQUESTS: "true" });
      expect(await app.admit("metering-session", 0)).toBe(true);
      await app.release("metering-session");
    }),
  );
  expect(lines).toEqual([
    ["AppObject", "admit"],
    ["AppObject", "release"],
  ]);
});
