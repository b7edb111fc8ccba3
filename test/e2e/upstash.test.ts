/**
 * Upstash mode: no bridge runs. Laravel publishes to Redis; the worker's subscriber
 * object reads it through Upstash's REST subscribe stream (a fixture speaking that
 * wire format on top of the real local Redis) and real laravel-echo clients receive.
 */
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { UpstashStatus } from "../../durable-objects/upstash-subscriber.ts";
import type { Stats } from "../../worker/routes/stats.ts";
import { startUpstashRest, type UpstashRestFixture } from "../fixtures/upstash-rest.ts";
import { CLIENT_VERSIONS, closeAll, collect, echoConnected, makeEcho, uniqueChannel, until, type EchoClient } from "../support/clients.ts";
import { laravelBroadcast } from "../support/laravel.ts";
import { startWorker, type RunningWorker } from "../support/worker.ts";

// Its own prefix, so publishes of other test files on the shared Redis never reach this subscriber.
const PREFIX = `e2e_upstash_${process.pid}_`;
const TOKEN = "upstash-test-token";
const APP = { appId: "upstash-app", key: "upstash-key" };

let upstash: UpstashRestFixture;
let worker: RunningWorker;
let redis: Redis;

beforeAll(async () => {
  upstash = await startUpstashRest(TOKEN);
  worker = await startWorker({
    CLIENTS: JSON.stringify([APP]),
    UPSTASH_REDIS_REST_URL: upstash.url,
    UPSTASH_REDIS_REST_TOKEN: TOKEN,
    REDIS_PREFIX: PREFIX,
    DEV_MODE: "true",
  });
  redis = new Redis("redis://127.0.0.1:6379");
  // The worker's first request starts the subscriber (on Cloudflare the cron does too).
  expect((await fetch(`${worker.url}/`)).status).toBe(200);
  await until(() => expect(upstash.subscribedStreams()).toBe(1), 20_000);
});

afterAll(async () => {
  await worker?.stop();
  await upstash?.close();
  await redis?.quit();
});

afterEach(closeAll);

async function upstashStatus(): Promise<UpstashStatus> {
  const body = (await (await fetch(`${worker.url}/stats`)).json()) as Stats;
  return body.upstash!;
}

const echoFor = (version: 2 | 4) => echoConnected(makeEcho(version, {}, worker.url));

const publish = (channel: string, payload: unknown) =>
  redis.publish(PREFIX + channel, typeof payload === "string" ? payload : JSON.stringify(payload));

/** Publishes until the listener proves the subscription is live (subscribe has no acknowledgement). */
async function untilSubscribed(echo: EchoClient, channel: string): Promise<void> {
  const ready = collect();
  echo.channel(channel).listen(".echo-edge.test.ready", ready.push);
  await until(async () => {
    await publish(channel, { event: "echo-edge.test.ready", data: {} });
    expect(ready.items.length).toBeGreaterThan(0);
  });
}

describe.each(CLIENT_VERSIONS)("Upstash mode with no bridge, socket.io-client %i", (version) => {
  it("delivers a Redis PUBLISH of Laravel's payload, prefix stripped", async () => {
    const echo = await echoFor(version);
    const channel = uniqueChannel("orders");
    const received = collect();
    echo.channel(channel).listen("OrderShipped", received.push);
    await untilSubscribed(echo, channel);

    // Commas in the message travel unescaped after the channel in Upstash's reply line.
    await publish(channel, { event: "App\\Events\\OrderShipped", data: { id: 7, note: "boxed, shipped", socket: null }, socket: null });
    await until(() => expect(received.items).toEqual([{ id: 7, note: "boxed, shipped", socket: null }]));
  });

  it("delivers Laravel's multi-channel EVAL to every channel, in order", async () => {
    const echo = await echoFor(version);
    const orders = uniqueChannel("orders");
    const audit = uniqueChannel("audit");
    const onOrders = collect<{ n: number }>();
    const onAudit = collect<{ n: number }>();
    echo.channel(orders).listen("OrderShipped", onOrders.push);
    echo.channel(audit).listen("OrderShipped", onAudit.push);
    await untilSubscribed(echo, orders);
    await untilSubscribed(echo, audit);

    for (let n = 0; n < 30; n++) await laravelBroadcast(redis, PREFIX, [orders, audit], "App\\Events\\OrderShipped", { n });
    const expected = [...Array(30).keys()].map((n) => ({ n, socket: null }));
    await until(() => expect(onOrders.items).toEqual(expected));
    await until(() => expect(onAudit.items).toEqual(expected));
  });
});

describe("the Upstash subscriber", () => {
  it("reports a confirmed subscription in /stats", async () => {
    expect(await upstashStatus()).toMatchObject({ app: APP.appId, state: "connected" });
  });

  it("counts and skips bad messages and delivers the next good one", async () => {
    const echo = await echoFor(4);
    const channel = uniqueChannel("bad");
    const received = collect();
    echo.channel(channel).listen(".Good", received.push);
    await untilSubscribed(echo, channel);
    const before = await upstashStatus();

    await publish(channel, "not JSON {");
    await publish(channel, { data: { missing: "event" } });
    await publish(channel, { event: "Good", data: "x".repeat(1_100_000) });
    await publish(channel, { event: "Good", data: { n: 1 } });

    await until(() => expect(received.items).toEqual([{ n: 1 }]));
    const after = await upstashStatus();
    expect(after.bad_messages - before.bad_messages).toBe(3);
    expect(after.state).toBe("connected");
  });

  it("resubscribes when Upstash cuts the stream and comes back, and delivers what is published then", async () => {
    const echo = await echoFor(2);
    const channel = uniqueChannel("outage");
    const received = collect<{ n: number }>();
    echo.channel(channel).listen(".AfterRestart", received.push);
    await untilSubscribed(echo, channel);
    const before = await upstashStatus();
    const subscriptionsBefore = upstash.subscriptions();

    await upstash.stop();
    await until(() => expect(upstash.subscribedStreams()).toBe(0));
    let lost: UpstashStatus | undefined;
    await until(async () => expect((lost = await upstashStatus()).state).toBe("reconnecting"));
    // Stay down until a retry has failed too: the subscriber must keep trying, not give up after one attempt.
    await until(async () => expect((await upstashStatus()).last_error?.at).not.toBe(lost!.last_error?.at));
    await upstash.start();

    // Retries back off to at most a second: well within this deadline on a loaded machine.
    await until(() => expect(upstash.subscriptions()).toBe(subscriptionsBefore + 1));
    await publish(channel, { event: "AfterRestart", data: { n: 1 } });
    await until(() => expect(received.items).toEqual([{ n: 1 }]));
    const after = await upstashStatus();
    expect(after).toMatchObject({ state: "connected", reconnects: before.reconnects + 1 });
    expect(after.last_error).not.toBeNull();
  });
});
