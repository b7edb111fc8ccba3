/**
 * Laravel -> Redis -> bridge -> worker -> laravel-echo, with nothing stood in:
 * the real bridge (in-process) forwards what Laravel's RedisBroadcaster publishes
 * to the shared test worker, and real laravel-echo clients receive it.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { startTestBridge } from "../support/bridge.ts";
import {
  CLIENT_VERSIONS,
  closeAll,
  collect,
  echoConnected,
  makeEcho,
  uniqueChannel,
  until,
  workerUrl,
  type EchoClient,
} from "../support/clients.ts";
import { LARAVEL_MULTI_CHANNEL_SCRIPT } from "../support/laravel.ts";

// Its own prefix, so other files publishing on the shared Redis do not reach this bridge.
const PREFIX = `e2e_bridge_${process.pid}_`;

let bridge: RunningBridge;
let redis: Redis;

beforeAll(async () => {
  bridge = await startTestBridge(workerUrl(), PREFIX);
  redis = new Redis("redis://127.0.0.1:6379");
});

afterAll(async () => {
  await bridge?.stop();
  await redis?.quit();
});

afterEach(closeAll);

const asUser = (id: number) => ({ auth: { headers: { Authorization: `Bearer ${id}` } } });

function laravelPublish(channels: string[], event: string, data: Record<string, unknown>, socket: string | null = null) {
  const payload = JSON.stringify({ event, data: { ...data, socket }, socket });
  return redis.eval(LARAVEL_MULTI_CHANNEL_SCRIPT, 0, payload, ...channels.map((channel) => PREFIX + channel));
}

/** Publishes through Redis until the listener proves the subscription is live (subscribe has no acknowledgement). */
async function untilSubscribed(echo: EchoClient, channel: string, kind: "channel" | "private" = "channel"): Promise<void> {
  const ready = collect();
  const name = kind === "private" ? channel.slice("private-".length) : channel;
  echo[kind](name).listen(".echo-edge.test.ready", ready.push);
  await until(async () => {
    await laravelPublish([channel], "echo-edge.test.ready", {});
    expect(ready.items.length).toBeGreaterThan(0);
  });
}

describe.each(CLIENT_VERSIONS)("through the bridge, socket.io-client %i", (version) => {
  it("delivers a Laravel broadcast to several channels, in order, prefix stripped", async () => {
    const echo = await echoConnected(makeEcho(version));
    const orders = uniqueChannel("orders");
    const audit = uniqueChannel("audit");
    const onOrders = collect<{ n: number }>();
    const onAudit = collect<{ n: number }>();
    echo.channel(orders).listen("OrderShipped", onOrders.push);
    echo.channel(audit).listen("OrderShipped", onAudit.push);
    await untilSubscribed(echo, orders);
    await untilSubscribed(echo, audit);

    for (let n = 0; n < 20; n++) await laravelPublish([orders, audit], "App\\Events\\OrderShipped", { n });
    const expected = [...Array(20).keys()].map((n) => ({ n, socket: null }));
    await until(() => expect(onOrders.items).toEqual(expected));
    await until(() => expect(onAudit.items).toEqual(expected));
  });

  it("skips the sender of a toOthers() broadcast on a private channel", async () => {
    const sender = await echoConnected(makeEcho(version, asUser(1)));
    const other = await echoConnected(makeEcho(version, asUser(2)));
    const channel = `private-${uniqueChannel("chat")}`;
    const senderGot = collect();
    const otherGot = collect();
    sender.private(channel.slice("private-".length)).listen(".Typing", senderGot.push);
    other.private(channel.slice("private-".length)).listen(".Typing", otherGot.push);
    await untilSubscribed(sender, channel, "private");
    await untilSubscribed(other, channel, "private");

    await laravelPublish([channel], "Typing", { user: "Taylor" }, sender.socketId()!);
    await laravelPublish([channel], "Typing", { user: "Abigail" });
    await until(() => expect(otherGot.items).toHaveLength(2));
    expect(senderGot.items).toEqual([{ user: "Abigail", socket: null }]);
  });
});
