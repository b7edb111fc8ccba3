/**
 * Issue 9 item 5, inside workerd: a bridge batch is delivered exactly once, even
 * when the channel object is evicted or hibernated between two deliveries of it,
 * and a batch signed for one app cannot be replayed to another.
 */
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { APP_A, APP_B, callWorker, signedBatch } from "./publish-helpers.ts";
import { subscribed } from "./probes.ts";

const waitFor = (check: () => unknown) => vi.waitFor(check, { timeout: 5000, interval: 10 });

async function send(appId: string, request: { body: string; headers: Record<string, string> }) {
  return callWorker(new Request(`https://worker.test/apps/${appId}/publish`, { method: "POST", ...request }));
}

describe("bridge batches across eviction", () => {
  it("a replayed signed batch reaches the subscriber once though the channel object was evicted in between", async () => {
    const channel = `replay.${crypto.randomUUID()}`;
    const link = await subscribed(APP_A.appId, channel, "subscriber");
    const captured = await signedBatch(APP_A.appId, { id: crypto.randomUUID(), messages: [{ channel, event: "Paid", data: { n: 1 } }] });
    expect((await send(APP_A.appId, captured)).status).toBe(200);
    await waitFor(async () => expect(await link.frames()).toEqual([["Paid", channel, { n: 1 }]]));

    // Out of memory: only storage remembers the batch.
    await evictDurableObject(link.stub);

    // The same request byte for byte, well inside the signature's window.
    expect((await send(APP_A.appId, captured)).status).toBe(200);
    const marker = await signedBatch(APP_A.appId, { id: crypto.randomUUID(), messages: [{ channel, event: "Marker", data: {} }] });
    expect((await send(APP_A.appId, marker)).status).toBe(200);
    await waitFor(async () => expect(await link.frames()).toContainEqual(["Marker", channel, {}]));
    expect(await link.frames()).toEqual([
      ["Paid", channel, { n: 1 }],
      ["Marker", channel, {}],
    ]);
  });

  it("a bridge retry (same batch id, signed again later) after an eviction is not delivered again", async () => {
    const channel = `retry.${crypto.randomUUID()}`;
    const link = await subscribed(APP_A.appId, channel, "subscriber");
    const batch = { id: crypto.randomUUID(), messages: [{ channel, event: "Paid", data: { n: 1 } }] };
    expect((await send(APP_A.appId, await signedBatch(APP_A.appId, batch, Date.now() - 60_000))).status).toBe(200);
    await waitFor(async () => expect(await link.frames()).toHaveLength(1));
    await evictDurableObject(link.stub);
    expect((await send(APP_A.appId, await signedBatch(APP_A.appId, batch))).status).toBe(200);
    const marker = await signedBatch(APP_A.appId, { id: crypto.randomUUID(), messages: [{ channel, event: "Marker", data: {} }] });
    await send(APP_A.appId, marker);
    await waitFor(async () => expect(await link.frames()).toContainEqual(["Marker", channel, {}]));
    expect((await link.frames()).filter(([event]) => event === "Paid")).toHaveLength(1);
  });
});

describe("a signature binds the batch to its app and endpoint", () => {
  it("a batch signed for app A is refused at app B's path and reaches nobody there", async () => {
    const channel = `cross-app.${crypto.randomUUID()}`;
    const onB = await subscribed(APP_B.appId, channel, "subscriber-b");
    const forA = await signedBatch(APP_A.appId, { id: crypto.randomUUID(), messages: [{ channel, event: "Stolen", data: {} }] });

    const replayed = await send(APP_B.appId, forA);
    expect(replayed.status).toBe(401);
    expect(await replayed.json()).toEqual({ error: "Unauthorized: bad signature" });

    const marker = await signedBatch(APP_B.appId, { id: crypto.randomUUID(), messages: [{ channel, event: "Marker", data: {} }] });
    expect((await send(APP_B.appId, marker)).status).toBe(200);
    await waitFor(async () => expect(await onB.frames()).toContainEqual(["Marker", channel, {}]));
    expect(await onB.frames()).toEqual([["Marker", channel, {}]]);
  });
});
