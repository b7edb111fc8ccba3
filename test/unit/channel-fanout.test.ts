/**
 * Issue 10: a channel delivers each batch once per subscriber address (connection
 * host or polling object), not once per socket. Probe hosts (test/unit/delivery-probe.ts)
 * count the deliver calls they receive; their sockets subscribe through the
 * production gateway. Also: toOthers applied per address, receipts that tell the
 * channel a host restarted or has no subscribers left, order per address under
 * concurrent publishes, and a resumed join that moves a socket between addresses.
 */
import { describe, expect, it, vi } from "vitest";
import type { PresenceMember } from "../../worker/channels/auth.ts";
import { channelStub as stubOf, probeHost, subscribed, type ProbeHost } from "./probes.ts";

const APP_ID = "app";
const channelStub = (channel: string) => stubOf(APP_ID, channel);
const subscribe = (channel: string, socketId: string, host: ProbeHost, member: PresenceMember | null = null) =>
  subscribed(APP_ID, channel, socketId, member, host);
const publish = (channel: string, event: string, data: unknown, socket: string | null = null) =>
  channelStub(channel).publish(APP_ID, channel, [{ event, data, socket }]);

const member = (id: number): PresenceMember => ({ user_id: id, user_info: { id } });
const waitFor = (check: () => unknown) => vi.waitFor(check, { timeout: 5000, interval: 10 });
const deliveries = async (hosts: ProbeHost[]) => Promise.all(hosts.map((host) => host.deliveries()));

describe("one delivery per address", () => {
  it("a publish to 30 subscribers on 3 hosts costs one channel call and 3 deliver calls", async () => {
    const channel = "fanout-hosts";
    const hosts = [probeHost(), probeHost(), probeHost()];
    const sockets = await Promise.all(Array.from({ length: 30 }, (_, i) => subscribe(channel, `s${i}`, hosts[i % 3]!)));
    const before = await deliveries(hosts);
    const invocations = (await channelStub(channel).info()).invocations;

    expect(await publish(channel, "Big", { n: 1 })).toEqual({ delivered: 30, duplicate: false });

    expect((await channelStub(channel).info()).invocations - invocations).toBe(2); // the publish and this info()
    const after = await deliveries(hosts);
    expect(after.map((n, i) => n - before[i]!)).toEqual([1, 1, 1]);
    for (const socket of sockets) expect(await socket.frames()).toEqual([["Big", channel, { n: 1 }]]);
  });

  it("toOthers is applied by each address, and an address whose only socket is excluded gets no call", async () => {
    const channel = "fanout-to-others";
    const [a, b, alone] = [probeHost(), probeHost(), probeHost()];
    const sender = await subscribe(channel, "sender", a);
    const neighbour = await subscribe(channel, "neighbour", a);
    const remote = await subscribe(channel, "remote", b);
    const solo = await subscribe(channel, "solo", alone);
    const before = await deliveries([a, b, alone]);

    expect(await publish(channel, "FromSender", {}, "sender")).toEqual({ delivered: 3, duplicate: false });
    expect(await publish(channel, "FromSolo", {}, "solo")).toEqual({ delivered: 3, duplicate: false });

    expect((await deliveries([a, b, alone])).map((n, i) => n - before[i]!)).toEqual([2, 2, 1]);
    expect(await sender.frames()).toEqual([["FromSolo", channel, {}]]);
    expect(await neighbour.frames()).toEqual([["FromSender", channel, {}], ["FromSolo", channel, {}]]);
    expect(await remote.frames()).toEqual([["FromSender", channel, {}], ["FromSolo", channel, {}]]);
    expect(await solo.frames()).toEqual([["FromSender", channel, {}]]);
  });
});

describe("receipts", () => {
  it("a host that restarted loses its subscriptions; presence leaves only for users no longer present elsewhere", async () => {
    const channel = "presence-restart";
    const [restarting, steady] = [probeHost(), probeHost()];
    await subscribe(channel, "a1", restarting, member(1));
    await subscribe(channel, "a2", restarting, member(2));
    await subscribe(channel, "b1", steady, member(1));
    const watcher = await subscribe(channel, "watch", steady, member(9));
    expect(await channelStub(channel).info()).toMatchObject({ subscription_count: 4, user_count: 3 });

    await restarting.restart();
    await publish(channel, "After", {});

    expect((await channelStub(channel).info()).subscription_count).toBe(2);
    // User 2 leaves after the grace; user 1 still has a socket on the other host.
    await waitFor(async () => expect(await watcher.frames()).toContainEqual(["presence:leaving", channel, member(2)]));
    expect((await watcher.frames()).filter((f) => f[0] === "presence:leaving")).toEqual([["presence:leaving", channel, member(2)]]);
    expect(await channelStub(channel).users()).toEqual([1, 9].map((id) => ({ id, user_info: member(id).user_info })));
    // The restarted host is no longer delivered to.
    const before = await restarting.deliveries();
    await publish(channel, "Later", {});
    expect(await restarting.deliveries()).toBe(before);
  });

  it("a join from a new incarnation of a host drops the subscriptions of the old one at once", async () => {
    const channel = "restart-then-join";
    const host = probeHost();
    await subscribe(channel, "old-1", host);
    await subscribe(channel, "old-2", host);
    await host.restart();
    const fresh = await subscribe(channel, "new", host);
    expect((await channelStub(channel).info()).subscription_count).toBe(1);
    expect(await publish(channel, "Hello", {})).toEqual({ delivered: 1, duplicate: false });
    expect(await fresh.frames()).toEqual([["Hello", channel, {}]]);
  });

  it("an address with no subscribers left is forgotten", async () => {
    const channel = "forgotten-address";
    const [gone, staying] = [probeHost(), probeHost()];
    await subscribe(channel, "lost", gone);
    const kept = await subscribe(channel, "kept", staying);
    // The socket left without telling the channel (its leave was lost).
    await gone.vanish(channel, "lost");

    expect(await publish(channel, "First", {})).toEqual({ delivered: 1, duplicate: false });
    expect((await channelStub(channel).info()).subscription_count).toBe(1);
    const before = await gone.deliveries();
    await publish(channel, "Second", {});
    expect(await gone.deliveries()).toBe(before);
    expect(await kept.frames()).toEqual([["First", channel, {}], ["Second", channel, {}]]);
  });
});

describe("order", () => {
  it("each address receives concurrent publishes in the channel's order, one delivery after the other", async () => {
    const channel = "ordered";
    const hosts = [probeHost(), probeHost()];
    // Deliveries that overlapped would finish in random order.
    for (const host of hosts) await host.setDelay(20, true);
    const sockets = await Promise.all(hosts.map((host, i) => subscribe(channel, `s${i}`, host)));

    await Promise.all(Array.from({ length: 20 }, (_, n) => publish(channel, "N", n)));

    const [first, second] = await Promise.all(sockets.map((socket) => socket.frames()));
    expect(first!.map((f) => f[2]).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(second).toEqual(first);
  });
});

describe("a resumed join (upgrade)", () => {
  it("moves the socket without presence events, after the deliveries on their way to its old address", async () => {
    const channel = "presence-moving";
    const [from, to, other] = [probeHost(), probeHost(), probeHost()];
    const watcher = await subscribe(channel, "watch", other, member(9));
    const old = await subscribe(channel, "moving", from, member(1));
    await from.setDelay(300, false);

    const inFlight = publish(channel, "During", {});
    // Let the delivery start before the move.
    await waitFor(async () => expect(await from.deliveries()).toBeGreaterThan(0));
    await to.join(APP_ID, channel, "moving", member(1), true);
    // The old address had it all by the time the join returned; the new one gets what follows.
    expect((await old.frames()).filter((f) => f[0] === "During")).toEqual([["During", channel, {}]]);
    await inFlight;
    await publish(channel, "After", {});
    expect(await to.frames("moving")).toEqual([["After", channel, {}]]);
    expect((await old.frames()).filter((f) => f[0] === "After")).toEqual([]);

    const presence = (await watcher.frames()).filter((f) => String(f[0]).startsWith("presence:"));
    expect(presence).toEqual([["presence:subscribed", channel, [member(9)]], ["presence:joining", channel, member(1)]]);
    expect(await channelStub(channel).info()).toMatchObject({ subscription_count: 2, user_count: 2 });
  });

  it("a late join or leave from the address the socket moved away from does not take it back", async () => {
    const channel = "presence-moved";
    const [from, to, other] = [probeHost(), probeHost(), probeHost()];
    const watcher = await subscribe(channel, "watch", other, member(9));
    await subscribe(channel, "moving", from, member(1));
    await to.join(APP_ID, channel, "moving", member(1), true);

    // The old transport's join that was still on its way when the session moved, then its leave.
    await from.join(APP_ID, channel, "moving", member(1));
    await from.close(channel, "moving", "unsubscribe");

    await publish(channel, "After", {});
    expect(await to.frames("moving")).toEqual([["After", channel, {}]]);
    expect(((await from.frames("moving")) as unknown[][]).filter((f) => f[0] === "After")).toEqual([]);
    expect((await watcher.frames()).filter((f) => f[0] === "presence:leaving")).toEqual([]);
    expect(await channelStub(channel).info()).toMatchObject({ subscription_count: 2, user_count: 2 });
  });
});
