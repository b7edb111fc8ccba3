/**
 * The Channel Durable Object inside workerd, through its RPC surface (join, leave,
 * whisper, publish): fan-out cost, and state that must survive hibernation and
 * eviction (subscriptions, presence members, toOthers). Subscribers are sockets of
 * probe hosts that subscribe through the production gateway (test/unit/probes.ts).
 */
import { SELF, env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { PresenceMember } from "../../worker/channels/auth.ts";
import { readConfig } from "../../worker/config.ts";
import { channelStub as stubOf, probeHost, subscribed } from "./probes.ts";

const APP = { appId: "app", key: "secret-key" };

const channelStub = (channel: string) => stubOf(APP.appId, channel);
const subscribe = (channel: string, socketId: string, member: PresenceMember | null = null, host = probeHost()) =>
  subscribed(APP.appId, channel, socketId, member, host);

function publish(channel: string, name: string, data: unknown, socketId?: string) {
  return SELF.fetch(`https://worker.test/apps/${APP.appId}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${APP.key}`, "content-type": "application/json" },
    body: JSON.stringify({ channel, name, data, ...(socketId ? { socket_id: socketId } : {}) }),
  });
}

const member = (id: number): PresenceMember => ({ user_id: id, user_info: { id, name: `user ${id}` } });
const waitFor = (check: () => unknown) => vi.waitFor(check, { timeout: 5000, interval: 10 });

describe("fan-out", () => {
  it("one publish to a channel with 100 subscribers on one host is one Durable Object call to the channel and one delivery", async () => {
    const channel = "fanout";
    const host = probeHost();
    const sockets = await Promise.all(Array.from({ length: 100 }, (_, i) => subscribe(channel, `socket-${i}`, null, host)));
    const before = (await channelStub(channel).info()).invocations;
    expect((await publish(channel, "Big", { n: 1 })).status).toBe(200);
    const after = (await channelStub(channel).info()).invocations;
    // The publish itself plus the info() call that reads the counter.
    expect(after - before).toBe(2);
    expect(await host.deliveries()).toBe(1);
    for (const socket of sockets) expect(await socket.frames()).toEqual([["Big", channel, { n: 1 }]]);
  });
});

describe("hibernation", () => {
  it("keeps subscriptions, presence members and toOthers across an eviction", async () => {
    const channel = "presence-hibernate";
    const stub = channelStub(channel);
    const one = await subscribe(channel, "s1", member(1));
    const two = await subscribe(channel, "s2", member(2));
    await waitFor(async () => expect(await one.frames()).toContainEqual(["presence:joining", channel, member(2)]));

    await evictDurableObject(stub);

    expect(await stub.users()).toEqual([{ id: 1, user_info: member(1).user_info }, { id: 2, user_info: member(2).user_info }]);
    expect(await stub.info()).toMatchObject({ subscription_count: 2, user_count: 2 });

    await publish(channel, "Msg", { from: "s1" }, "s1");
    await publish(channel, "Msg", { marker: true });
    await waitFor(async () => expect((await two.frames()).filter((f) => f[0] === "Msg")).toEqual([
      ["Msg", channel, { from: "s1" }],
      ["Msg", channel, { marker: true }],
    ]));
    await waitFor(async () => expect((await one.frames()).filter((f) => f[0] === "Msg")).toEqual([["Msg", channel, { marker: true }]]));

    const three = await subscribe(channel, "s3", member(3));
    await waitFor(async () => expect((await three.frames())[0]).toEqual(["presence:subscribed", channel, [member(1), member(2), member(3)]]));
    await waitFor(async () => expect(await one.frames()).toContainEqual(["presence:joining", channel, member(3)]));

    await two.close("unsubscribe");
    await waitFor(async () => expect(await three.frames()).toContainEqual(["presence:leaving", channel, member(2)]));
    expect(await stub.users()).toEqual([{ id: 1, user_info: member(1).user_info }, { id: 3, user_info: member(3).user_info }]);
  });

  it("a disconnected socket leaves after the grace unless the user comes back, even while evicted", async () => {
    const channel = "presence-grace";
    const stub = channelStub(channel);
    const watcher = await subscribe(channel, "w", member(9));
    const first = await subscribe(channel, "a", member(1));
    await first.close("disconnect");
    await evictDurableObject(stub);
    // Back within the grace on a new socket: no leaving, no second joining.
    await subscribe(channel, "b", member(1));
    const second = await subscribe(channel, "c", member(2));
    await second.close("disconnect");
    await waitFor(async () => expect(await watcher.frames()).toContainEqual(["presence:leaving", channel, member(2)]));
    const frames = await watcher.frames();
    const joins = frames.filter((f) => f[0] === "presence:joining").map((f) => f[2]);
    expect(joins).toEqual([member(1), member(2)]);
    expect(frames.filter((f) => f[0] === "presence:leaving")).toEqual([["presence:leaving", channel, member(2)]]);
  });

  it("lists members in join order and users with their user_info, also after an eviction", async () => {
    const channel = "presence-order";
    const stub = channelStub(channel);
    // User 2 joins first; user 1's two sockets count once, where the first of them joined.
    await subscribe(channel, "x", member(2));
    await subscribe(channel, "y", member(1));
    await subscribe(channel, "z", member(1));
    await evictDurableObject(stub);
    const last = await subscribe(channel, "last", member(3));
    expect((await last.frames())[0]).toEqual(["presence:subscribed", channel, [member(2), member(1), member(3)]]);
    expect(await stub.users()).toEqual([2, 1, 3].map((id) => ({ id, user_info: member(id).user_info })));
  });
});

describe("whisper", () => {
  it("goes to the other subscribers only, and only client-* events", async () => {
    const channel = "private-whisper";
    const a = await subscribe(channel, "a");
    const b = await subscribe(channel, "b");
    await a.whisper("typing", { no: true });
    await a.whisper("client-typing", { yes: true });
    await waitFor(async () => expect(await b.frames()).toEqual([["client-typing", channel, { yes: true }]]));
    expect(await a.frames()).toEqual([]);
  });

  it("relays only client-* events on private and presence channels, within WHISPER_BYTES", async () => {
    const limit = readConfig(env).whisperBytes;
    for (const channel of ["private-recheck", "presence-recheck"]) {
      const member1 = channel.startsWith("presence-") ? member(1) : null;
      const member2 = channel.startsWith("presence-") ? member(2) : null;
      const sender = await subscribe(channel, "1.1", member1);
      const listener = await subscribe(channel, "2.2", member2);
      await sender.whisper("typing", { n: 1 });
      await sender.whisper("client-typing", { n: 2, pad: "x".repeat(limit) });
      await sender.whisper("client-typing", { n: 3 });
      await waitFor(async () =>
        expect((await listener.frames()).filter((f) => f[0] === "client-typing")).toEqual([["client-typing", channel, { n: 3 }]]),
      );
    }
  });

  it("relays nothing on a public channel, whatever the session let through", async () => {
    const channel = "public-recheck";
    const stub = channelStub(channel);
    const sender = await subscribe(channel, "1.1");
    const listener = await subscribe(channel, "2.2");
    await sender.whisper("client-typing", { n: 1 });
    // The leave goes after the whisper: once the channel has seen it, it has handled the whisper.
    await sender.close("disconnect");
    await waitFor(async () => expect((await stub.info()).subscription_count).toBe(1));
    // Anything relayed went to the listener before this publish.
    await stub.publish("app", channel, [{ event: "After", data: {} }]);
    await waitFor(async () => expect(await listener.frames()).toContainEqual(["After", channel, {}]));
    expect(await listener.frames()).toEqual([["After", channel, {}]]);
  });

  it("is refused from a socket not subscribed from that address", async () => {
    const channel = "private-impostor";
    const listener = await subscribe(channel, "listener");
    await subscribe(channel, "subscriber");
    // The socket id of a real subscriber, claimed from another host.
    await channelStub(channel).whisper(await probeHost().address(), "subscriber", { event: "client-fake", data: {} });
    await channelStub(channel).publish("app", channel, [{ event: "After", data: {} }]);
    await waitFor(async () => expect(await listener.frames()).toEqual([["After", channel, {}]]));
  });
});
