/**
 * Issue 11 part 1 and issue 9 item 8: Laravel's `pusher` broadcaster publishes
 * straight to the worker. The official `pusher` SDK signs exactly as
 * pusher-php-server does and makes the calls Laravel makes (trigger to one or many
 * channels, with `socket_id` for toOthers, and triggerBatch); real laravel-echo on
 * socket.io-client 2 and 4 receives them. laravel-echo-server's `auth_key` form of
 * the same endpoint keeps working, with string data parsed as it did.
 */
import Pusher from "pusher";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  CLIENT_VERSIONS,
  closeAll,
  collect,
  echoConnected,
  makeEcho,
  publishEvent,
  uniqueChannel,
  until,
  workerUrl,
  type EchoClient,
} from "../support/clients.ts";
import { TEST_APP } from "../support/stack.ts";

afterEach(closeAll);

/** Laravel's pusher broadcaster pointed at the worker: PUSHER_HOST/PORT/SCHEME and the app's id, key and secret. */
function laravelPusher(app: { appId: string; key: string; secret: string } = TEST_APP): Pusher {
  const { hostname, port } = new URL(workerUrl());
  return new Pusher({ ...app, host: hostname, port, useTLS: false });
}

/** Waits until the channel object holds `count` subscriptions, after which a publish reaches all of them. */
async function untilSubscribers(channel: string, count: number): Promise<void> {
  await until(async () => {
    const response = await fetch(`${workerUrl()}/apps/${TEST_APP.appId}/channels/${encodeURIComponent(channel)}`, {
      headers: { authorization: `Bearer ${TEST_APP.key}` },
    });
    expect(((await response.json()) as { subscription_count: number }).subscription_count).toBe(count);
  });
}

/** Listens the way an app does: `listen('OrderShipped')` is Laravel's `App\Events\OrderShipped`. */
function listen(echo: EchoClient, channel: string, event: string) {
  const seen = collect();
  echo.channel(channel).listen(event, seen.push);
  return seen;
}

/** The RequestError the SDK rejects with, as status and the worker's JSON answer. */
async function refusal(publish: Promise<unknown>): Promise<{ status: number; body: unknown }> {
  const error = (await publish.then(
    () => expect.fail("the worker accepted the publish"),
    (e: unknown) => e,
  )) as { status: number; body: string };
  return { status: error.status, body: JSON.parse(error.body) };
}

describe.each(CLIENT_VERSIONS)("Laravel's pusher broadcaster to laravel-echo on socket.io-client %i", (version) => {
  it("trigger() to one channel and to several reaches the subscribers with the data parsed, answered {}", async () => {
    const echo = await echoConnected(makeEcho(version));
    const orders = uniqueChannel("orders");
    const audit = uniqueChannel("audit");
    const onOrders = listen(echo, orders, "OrderShipped");
    const onAudit = listen(echo, audit, "OrderShipped");
    await untilSubscribers(orders, 1);
    await untilSubscribers(audit, 1);

    const pusher = laravelPusher();
    const single = await pusher.trigger(orders, "App\\Events\\OrderShipped", { order: { id: 1, total: "9.99" } });
    expect(single.status).toBe(200);
    expect(await single.json()).toEqual({});
    await pusher.trigger([orders, audit], "App\\Events\\OrderShipped", { order: { id: 2 }, note: "ünïcødé" });

    await until(() => expect(onOrders.items).toHaveLength(2));
    expect(onOrders.items).toEqual([{ order: { id: 1, total: "9.99" } }, { order: { id: 2 }, note: "ünïcødé" }]);
    await until(() => expect(onAudit.items).toEqual([{ order: { id: 2 }, note: "ünïcødé" }]));
  });

  it("triggerBatch() delivers every event of the batch, in order per channel, with the data parsed", async () => {
    const echo = await echoConnected(makeEcho(version));
    const first = uniqueChannel("batch.a");
    const second = uniqueChannel("batch.b");
    const onFirst = listen(echo, first, ".step");
    const onSecond = listen(echo, second, ".step");
    await untilSubscribers(first, 1);
    await untilSubscribers(second, 1);

    const response = await laravelPusher().triggerBatch([
      { channel: first, name: "step", data: { n: 1 } },
      { channel: second, name: "step", data: { n: 2 } },
      { channel: first, name: "step", data: { n: 3 } },
    ]);
    expect(response.status).toBe(200);

    await until(() => expect(onFirst.items).toEqual([{ n: 1 }, { n: 3 }]));
    await until(() => expect(onSecond.items).toEqual([{ n: 2 }]));
  });

  it("socket_id (toOthers) leaves out the client with that socket id and no one else", async () => {
    const channel = uniqueChannel("chat");
    const sender = await echoConnected(makeEcho(version));
    const other = await echoConnected(makeEcho(version));
    const toSender = listen(sender, channel, "MessagePosted");
    const toOther = listen(other, channel, "MessagePosted");
    await untilSubscribers(channel, 2);
    // What Laravel takes from X-Socket-Id; pusher-php-server and this SDK accept only Pusher's form.
    const socketId = sender.socketId()!;
    expect(socketId).toMatch(/^\d+\.\d+$/);

    const pusher = laravelPusher();
    await pusher.trigger(channel, "App\\Events\\MessagePosted", { text: "from the sender" }, { socket_id: socketId });
    await pusher.trigger(channel, "App\\Events\\MessagePosted", { text: "to everyone" });

    await until(() => expect(toOther.items).toEqual([{ text: "from the sender" }, { text: "to everyone" }]));
    await until(() => expect(toSender.items).toEqual([{ text: "to everyone" }]));
  });

  it("a wrong secret, an expired timestamp and an app without a secret are refused with 401 and deliver nothing", async () => {
    const echo = await echoConnected(makeEcho(version));
    const channel = uniqueChannel("guarded");
    const seen = listen(echo, channel, ".Attempt");
    await untilSubscribers(channel, 1);

    const wrongSecret = await refusal(laravelPusher({ ...TEST_APP, secret: "not-the-secret" }).trigger(channel, "Attempt", { n: "wrong secret" }));
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body).toEqual({ error: expect.stringMatching(/^Unauthorized: invalid signature/) });

    // Signed by the SDK with a clock 601 s behind, as a publisher with a wrong clock (or a replay) would send it.
    const path = `/apps/${TEST_APP.appId}/events`;
    const body = JSON.stringify({ name: "Attempt", data: JSON.stringify({ n: "expired" }), channels: [channel] });
    const realNow = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(realNow - 601_000);
    const query = laravelPusher().createSignedQueryString({ method: "POST", path, body });
    vi.restoreAllMocks();
    const expired = await fetch(`${workerUrl()}${path}?${query}`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(expired.status).toBe(401);
    expect(await expired.json()).toEqual({
      error: "Unauthorized: auth_timestamp is more than 600 s from the server's time; check the publisher's clock",
    });

    const withoutSecret = await refusal(
      laravelPusher({ appId: "other-app", key: "other-key", secret: "anything" }).trigger(channel, "Attempt", { n: "no secret" }),
    );
    expect(withoutSecret).toEqual({
      status: 401,
      body: { error: 'Unauthorized: app other-app has no secret, so it cannot verify Pusher-signed requests: add "secret" to its CLIENTS entry' },
    });

    await laravelPusher().trigger(channel, "Attempt", { n: "signed" });
    await until(() => expect(seen.items).toContainEqual({ n: "signed" }));
    expect(seen.items).toEqual([{ n: "signed" }]);
  });
});

describe.each(CLIENT_VERSIONS)("laravel-echo-server's auth_key form, socket.io-client %i", (version) => {
  it("data given as a JSON string reaches clients parsed; a string that is not JSON stays a string", async () => {
    const echo = await echoConnected(makeEcho(version));
    const channel = uniqueChannel("notes");
    const seen = listen(echo, channel, ".Note");
    await untilSubscribers(channel, 1);

    const json = await publishEvent({ channel, name: "Note", data: JSON.stringify({ text: "parsed", tags: ["a"] }) });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({ message: "ok" });
    await publishEvent({ channel, name: "Note", data: "plain words, not JSON" });
    await publishEvent({ channel, name: "Note", data: { already: "an object" } });

    await until(() => expect(seen.items).toHaveLength(3));
    expect(seen.items).toEqual([{ text: "parsed", tags: ["a"] }, "plain words, not JSON", { already: "an object" }]);
  });
});
