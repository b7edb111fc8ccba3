/**
 * The Channel Durable Object inside workerd: fan-out cost, and state that must
 * survive hibernation (links, presence members, toOthers).
 */
import { SELF, env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { PresenceMember } from "../../worker/channels/auth.ts";
import { LINK_INFO_HEADER, LINK_SEPARATOR, UNSUBSCRIBE_CLOSE_CODE, type LinkInfo } from "../../worker/channels/link.ts";
import { channelObjectName } from "../../worker/channels/names.ts";

const APP = { appId: "app", key: "secret-key" };

function channelStub(channel: string) {
  return env.CHANNEL.getByName(channelObjectName(APP.appId, channel));
}

/** Opens a link the way a session does and records the Socket.IO frames it receives. */
async function openLink(channel: string, socketId: string, member: PresenceMember | null = null) {
  const info: LinkInfo = { appId: APP.appId, channel, socketId, member };
  const response = await channelStub(channel).fetch("https://channel.internal/link", {
    headers: { upgrade: "websocket", [LINK_INFO_HEADER]: JSON.stringify(info) },
  });
  const ws = response.webSocket!;
  ws.accept();
  const frames: unknown[][] = [];
  ws.addEventListener("message", (event) => {
    for (const frame of String(event.data).split(LINK_SEPARATOR)) frames.push(JSON.parse(frame.slice(2)));
  });
  return { ws, frames };
}

function publish(channel: string, name: string, data: unknown, socketId?: string) {
  return SELF.fetch(`https://worker.test/apps/${APP.appId}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${APP.key}`, "content-type": "application/json" },
    body: JSON.stringify({ channel, name, data, ...(socketId ? { socket_id: socketId } : {}) }),
  });
}

const member = (id: number): PresenceMember => ({ user_id: id, user_info: { id, name: `user ${id}` } });
const waitFor = (check: () => void) => vi.waitFor(check, { timeout: 5000, interval: 10 });

describe("fan-out", () => {
  it("one publish to a channel with 100 subscribers is one Durable Object call", async () => {
    const channel = "fanout";
    const links = await Promise.all(Array.from({ length: 100 }, (_, i) => openLink(channel, `socket-${i}`)));
    const before = (await channelStub(channel).info()).invocations;
    expect((await publish(channel, "Big", { n: 1 })).status).toBe(200);
    const after = (await channelStub(channel).info()).invocations;
    // The publish itself plus the info() call that reads the counter.
    expect(after - before).toBe(2);
    await waitFor(() => {
      for (const link of links) expect(link.frames).toEqual([["Big", channel, { n: 1 }]]);
    });
  });
});

describe("hibernation", () => {
  it("keeps subscriptions, presence members and toOthers across an eviction", async () => {
    const channel = "presence-hibernate";
    const stub = channelStub(channel);
    const one = await openLink(channel, "s1", member(1));
    const two = await openLink(channel, "s2", member(2));
    await waitFor(() => expect(one.frames).toContainEqual(["presence:joining", channel, member(2)]));

    await evictDurableObject(stub, { webSockets: "hibernate" });

    expect(await stub.users()).toEqual([{ id: 1, user_info: member(1).user_info }, { id: 2, user_info: member(2).user_info }]);
    expect(await stub.info()).toMatchObject({ subscription_count: 2, user_count: 2 });

    await publish(channel, "Msg", { from: "s1" }, "s1");
    await publish(channel, "Msg", { marker: true });
    await waitFor(() => expect(two.frames.filter((f) => f[0] === "Msg")).toEqual([
      ["Msg", channel, { from: "s1" }],
      ["Msg", channel, { marker: true }],
    ]));
    await waitFor(() => expect(one.frames.filter((f) => f[0] === "Msg")).toEqual([["Msg", channel, { marker: true }]]));

    const three = await openLink(channel, "s3", member(3));
    await waitFor(() => expect(three.frames[0]).toEqual(["presence:subscribed", channel, [member(1), member(2), member(3)]]));
    await waitFor(() => expect(one.frames).toContainEqual(["presence:joining", channel, member(3)]));

    two.ws.close(UNSUBSCRIBE_CLOSE_CODE, "unsubscribe");
    await waitFor(() => expect(three.frames).toContainEqual(["presence:leaving", channel, member(2)]));
    expect(await stub.users()).toEqual([{ id: 1, user_info: member(1).user_info }, { id: 3, user_info: member(3).user_info }]);
  });

  it("a dropped link leaves after the grace unless the user comes back, even while hibernated", async () => {
    const channel = "presence-grace";
    const stub = channelStub(channel);
    const watcher = await openLink(channel, "w", member(9));
    const first = await openLink(channel, "a", member(1));
    first.ws.close(1000, "disconnect");
    await evictDurableObject(stub, { webSockets: "hibernate" });
    // Back within the grace on a new socket: no leaving, no second joining.
    await openLink(channel, "b", member(1));
    const second = await openLink(channel, "c", member(2));
    second.ws.close(1000, "disconnect");
    await waitFor(() => expect(watcher.frames).toContainEqual(["presence:leaving", channel, member(2)]));
    const joins = watcher.frames.filter((f) => f[0] === "presence:joining").map((f) => f[2]);
    expect(joins).toEqual([member(1), member(2)]);
    expect(watcher.frames.filter((f) => f[0] === "presence:leaving")).toEqual([["presence:leaving", channel, member(2)]]);
  });
});

describe("whisper", () => {
  it("goes to the other links only, and only client-* events", async () => {
    const channel = "private-whisper";
    const a = await openLink(channel, "a");
    const b = await openLink(channel, "b");
    a.ws.send(JSON.stringify({ event: "typing", data: { no: true } }));
    a.ws.send(JSON.stringify({ event: "client-typing", data: { yes: true } }));
    await waitFor(() => expect(b.frames).toEqual([["client-typing", channel, { yes: true }]]));
    expect(a.frames).toEqual([]);
  });
});
