/**
 * Connection state recovery in the Channel Durable Object (RECOVERY_WINDOW 1 s and
 * RECOVERY_HISTORY_BATCHES 10 in this project): a recoverable subscription whose
 * connection is lost is kept, presence included, and the reconnected socket takes it
 * up at a new address with every frame it missed, across an eviction; what cannot
 * be taken up is refused.
 */
import { SELF, evictDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { PresenceMember } from "../../worker/channels/auth.ts";
import { channelStub as stubOf, probeHost, subscribed } from "./probes.ts";

const APP_ID = "app";
const channelStub = (channel: string) => stubOf(APP_ID, channel);
const member = (id: number): PresenceMember => ({ user_id: id, user_info: { id, name: `user ${id}` } });
const waitFor = (check: () => unknown) => vi.waitFor(check, { timeout: 5000, interval: 10 });
const PID = "1.1:2.2";

function publish(channel: string, data: unknown, socketId?: string) {
  return SELF.fetch(`https://worker.test/apps/${APP_ID}/events`, {
    method: "POST",
    headers: { authorization: "Bearer secret-key", "content-type": "application/json" },
    body: JSON.stringify({ channel, name: "Tick", data, ...(socketId ? { socket_id: socketId } : {}) }),
  });
}

const ticks = (frames: unknown[][]) => frames.filter((frame) => frame[0] === "Tick").map((frame) => frame[2]);

/** An observer without a pid and the recoverable socket "1.1" (user 1) on a presence channel; the socket has received n = 1. */
async function lostAfterOneTick(channel: string) {
  const observer = await subscribed(APP_ID, channel, "9.9", member(9));
  const socket = await subscribed(APP_ID, channel, "1.1", member(1), probeHost(), PID);
  expect((await publish(channel, { n: 1 })).status).toBe(200);
  await waitFor(async () => expect(ticks(await socket.frames())).toEqual([{ n: 1 }]));
  const position = (await socket.host.seqs("1.1")).at(-1)!;
  await socket.close("lost");
  return { observer, socket, position };
}

describe("a lost recoverable subscription", () => {
  it("is kept, presence included, and taken up at a new address with what it missed (toOthers applied), across an eviction", async () => {
    const channel = "presence-recover";
    const stub = channelStub(channel);
    const { observer, position } = await lostAfterOneTick(channel);
    await waitFor(async () => expect(await stub.info()).toMatchObject({ subscription_count: 1, user_count: 2 }));

    expect((await publish(channel, { n: 2 }, "1.1")).status).toBe(200); // toOthers from the lost socket's session
    expect((await publish(channel, { n: 3 })).status).toBe(200);
    await evictDurableObject(stub);

    const newHost = probeHost();
    expect(await newHost.recover(APP_ID, channel, "1.1", PID, position)).toBe(true);
    expect(ticks(await newHost.frames("1.1"))).toEqual([{ n: 3 }]);
    const [replayed] = await newHost.seqs("1.1");
    expect(replayed).toBeGreaterThan(position);
    expect(await stub.info()).toMatchObject({ subscription_count: 2, user_count: 2 });

    expect((await publish(channel, { n: 4 })).status).toBe(200);
    await waitFor(async () => expect(ticks(await newHost.frames("1.1"))).toEqual([{ n: 3 }, { n: 4 }]));
    const observed = await observer.frames();
    expect(observed.filter((frame) => frame[0] === "presence:leaving")).toEqual([]);
    expect(observed.filter((frame) => frame[0] === "presence:joining")).toEqual([["presence:joining", channel, member(1)]]);
  });

  it("is refused to a wrong pid, a position the channel never numbered, and once its history no longer reaches back", async () => {
    const channel = "presence-refuse";
    const { position } = await lostAfterOneTick(channel);
    const newHost = probeHost();
    expect(await newHost.recover(APP_ID, channel, "1.1", "1.1:3.3", position)).toBe(false);
    expect(await newHost.recover(APP_ID, channel, "1.1", PID, position + 1000)).toBe(false);
    // RECOVERY_HISTORY_BATCHES is 10 here, and each of these publishes is a batch.
    for (let n = 2; n <= 13; n++) expect((await publish(channel, { n })).status).toBe(200);
    expect(await newHost.recover(APP_ID, channel, "1.1", PID, position)).toBe(false);
    expect(await newHost.frames("1.1")).toEqual([]);
  });

  it("ends after RECOVERY_WINDOW: the member leaves and there is nothing left to take up", async () => {
    const channel = "presence-expire";
    const { observer, position } = await lostAfterOneTick(channel);
    await waitFor(async () => expect(await observer.frames()).toContainEqual(["presence:leaving", channel, member(1)]));
    expect(await channelStub(channel).info()).toMatchObject({ subscription_count: 1, user_count: 1 });
    expect(await probeHost().recover(APP_ID, channel, "1.1", PID, position)).toBe(false);
  });

  it("a disconnect without a pid is no lost session: the member leaves after the presence grace", async () => {
    const channel = "presence-plain";
    const observer = await subscribed(APP_ID, channel, "9.9", member(9));
    const plain = await subscribed(APP_ID, channel, "2.2", member(2));
    await plain.close("lost");
    await waitFor(async () => expect(await observer.frames()).toContainEqual(["presence:leaving", channel, member(2)]));
    expect(await probeHost().recover(APP_ID, channel, "2.2", "2.2:1.1", 0)).toBe(false);
  });
});
