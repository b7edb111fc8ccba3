/**
 * Issue 3: a Laravel app's Echo code (channel/private/join, listen, here/joining/
 * leaving, whisper, toOthers) works unchanged against the worker, with real
 * laravel-echo on socket.io-client 2 and 4.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  CLIENT_VERSIONS,
  authRequestsFor,
  closeAll,
  collect,
  connectSocket,
  connected,
  echoConnected,
  joinPresence,
  makeEcho,
  publishBatch,
  publishEvent,
  type PresenceUser,
  uniqueChannel,
  until,
  workerUrl,
  type AnySocket,
  type ClientVersion,
  type EchoClient,
} from "../support/clients.ts";
import { TEST_VARS } from "../support/stack.ts";

afterEach(closeAll);

const asUser = (id: number) => ({ auth: { headers: { Authorization: `Bearer ${id}` } } });
const socketOf = (echo: EchoClient) => echo.connector.socket as unknown as AnySocket;

/** Publishes until a listener proves the subscription is live (subscribe has no acknowledgement). */
async function untilSubscribed(channel: string, received: () => unknown[]): Promise<void> {
  await until(async () => {
    await publishBatch([{ channel, event: "echo-edge.test.ready", data: {} }]);
    expect(received().length).toBeGreaterThan(0);
  });
}

function readyListener(echo: EchoClient, channel: string, kind: "channel" | "private" | "join" = "channel") {
  const ready = collect();
  (echo[kind](channel) as ReturnType<EchoClient["channel"]>).listen(".echo-edge.test.ready", ready.push);
  return () => ready.items;
}

describe.each(CLIENT_VERSIONS)("public channels, socket.io-client %i", (version) => {
  it("receives a payload shaped exactly as Laravel's RedisBroadcaster publishes it", async () => {
    const echo = await echoConnected(makeEcho(version));
    const channel = uniqueChannel("orders");
    const shipped = collect();
    echo.channel(channel).listen("OrderShipped", shipped.push);
    await untilSubscribed(channel, readyListener(echo, channel));
    const data = { order: { id: 7, total: "12.50" }, note: "ünïcødé ✓ 🚚", socket: null };
    const response = await publishBatch([{ channel, event: "App\\Events\\OrderShipped", data, socket: null }]);
    expect(response.status).toBe(200);
    await until(() => expect(shipped.items).toEqual([data]));
  });

  it("listen('.NewMessageEvent') on conversation.123 gets {message: 'test'}", async () => {
    const echo = await echoConnected(makeEcho(version));
    const channel = `conversation.123.${version}.${Date.now()}`;
    const messages = collect();
    echo.channel(channel).listen(".NewMessageEvent", messages.push);
    await untilSubscribed(channel, readyListener(echo, channel));
    await publishBatch([{ channel, event: "NewMessageEvent", data: { message: "test" } }]);
    await until(() => expect(messages.items).toEqual([{ message: "test" }]));
  });

  it("isolates channels, keeps 200 rapid messages complete and in order, and carries 256 KiB intact", async () => {
    const echo = await echoConnected(makeEcho(version));
    const other = await echoConnected(makeEcho(version));
    const channel = uniqueChannel("stream");
    const elsewhere = uniqueChannel("elsewhere");
    const seq = collect<{ n: number }>();
    const big = collect<{ blob: string }>();
    const otherSaw = collect();
    echo.channel(channel).listen(".Seq", seq.push).listen(".Big", big.push);
    other.channel(elsewhere).listen(".Seq", otherSaw.push).listen(".Done", otherSaw.push);
    await untilSubscribed(channel, readyListener(echo, channel));
    await untilSubscribed(elsewhere, readyListener(other, elsewhere));

    for (let n = 0; n < 200; n++) await publishBatch([{ channel, event: "Seq", data: { n } }]);
    const blob = "x".repeat(256 * 1024 - 3) + "€✓🚚".slice(0, 3);
    await publishBatch([{ channel, event: "Big", data: { blob } }]);
    await publishBatch([{ channel: elsewhere, event: "Done", data: { done: true } }]);

    await until(() => expect(seq.items.length).toBe(200));
    expect(seq.items.map((m) => m.n)).toEqual([...Array(200).keys()]);
    await until(() => expect(big.items.length).toBe(1));
    expect(big.items[0]!.blob).toBe(blob);
    await until(() => expect(otherSaw.items).toEqual([{ done: true }]));
  });

  it("one client subscribed to 12 channels receives on all 12", async () => {
    const echo = await echoConnected(makeEcho(version));
    const channels = Array.from({ length: 12 }, (_, i) => uniqueChannel(`many${i}`));
    const received = collect<{ channel: string }>();
    for (const channel of channels) echo.channel(channel).listen(".Hello", received.push);
    await until(async () => {
      await publishBatch(channels.map((channel) => ({ channel, event: "Hello", data: { channel } })));
      expect(new Set(received.items.map((m) => m.channel)).size).toBe(12);
    }, 20_000);
  });

  it("toOthers: the publisher's socket id is skipped, an unknown id reaches everyone", async () => {
    const a = await echoConnected(makeEcho(version));
    const b = await echoConnected(makeEcho(version));
    const channel = uniqueChannel("others");
    const atA = collect();
    const atB = collect();
    a.channel(channel).listen(".Note", atA.push);
    b.channel(channel).listen(".Note", atB.push);
    await untilSubscribed(channel, readyListener(a, channel));
    await untilSubscribed(channel, readyListener(b, channel));
    await publishBatch([
      { channel, event: "Note", data: { n: 1, socket: a.socketId() }, socket: a.socketId() },
      { channel, event: "Note", data: { n: 2, socket: "nobody" }, socket: "nobody" },
    ]);
    await publishEvent({ channel, name: "Note", data: { n: 3 }, socket_id: a.socketId() });
    await until(() => expect(atB.items).toHaveLength(3));
    await until(() => expect(atA.items).toEqual([{ n: 2, socket: "nobody" }]));
    expect(atB.items).toEqual([{ n: 1, socket: a.socketId() }, { n: 2, socket: "nobody" }, { n: 3 }]);
  });
});

describe.each(CLIENT_VERSIONS)("private channels, socket.io-client %i", (version) => {
  it("an allowed user receives; Laravel got the documented request", async () => {
    // Node 22's built-in WebSocket (which socket.io-client 2 prefers) cannot send
    // headers, so client 2 brings its cookie on the polling handshake and upgrades.
    const transports = version === 2 ? ["polling", "websocket"] : ["websocket"];
    const echo = await echoConnected(
      makeEcho(version, { ...asUser(1), transports, extraHeaders: { cookie: "laravel_session=1; theme=dark" } }),
    );
    const channel = uniqueChannel("private-orders");
    const events = collect();
    echo.private(channel.slice("private-".length)).listen(".Paid", events.push);
    await until(async () => {
      await publishBatch([{ channel, event: "Paid", data: { ok: true } }]);
      expect(events.items.length).toBeGreaterThan(0);
    });
    expect(events.items[0]).toEqual({ ok: true });
    const [request, ...rest] = await authRequestsFor(channel);
    expect(rest).toEqual([]);
    // socket_id as pusher-js sends it, which Laravel's pusher broadcaster needs (the redis one ignores it).
    const body = `channel_name=${encodeURIComponent(channel)}&socket_id=${encodeURIComponent(echo.socketId()!)}`;
    expect(request).toMatchObject({ method: "POST", path: "/broadcasting/auth", body });
    expect(request!.headers).toMatchObject({
      authorization: "Bearer 1",
      "x-requested-with": "XMLHttpRequest",
      "content-type": "application/x-www-form-urlencoded",
      cookie: "laravel_session=1; theme=dark",
    });
  });

  it.each([
    { name: "refused by the channel callback", channel: "private-denied", user: 1, status: 403 },
    { name: "not logged in", channel: "private-orders", user: 0, status: 401 },
    { name: "someone else's user channel", channel: "private-user.2", user: 1, status: 403 },
    { name: "auth endpoint down", channel: "private-down", user: 1, status: 0 },
    { name: "auth endpoint too slow", channel: "private-slow", user: 1, status: 0 },
    { name: "auth endpoint redirects (not followed)", channel: "private-redirect", user: 1, status: 302 },
    { name: "auth endpoint crashes", channel: "private-crash", user: 1, status: 500 },
  ])("$name: subscription_error [channel, $status] and no events", async ({ channel: base, user, status }) => {
    const echo = await echoConnected(makeEcho(version, user ? asUser(user) : {}));
    const channel = base === "private-user.2" ? base : uniqueChannel(base);
    const errors = collect<number>();
    const events = collect();
    echo.private(channel.slice("private-".length)).listen(".Secret", events.push).on("subscription_error", errors.push);
    await until(() => expect(errors.items).toEqual([status]), Number(TEST_VARS.AUTH_TIMEOUT) + 10_000);
    await publishBatch([{ channel, event: "Secret", data: { leaked: true } }]);
    // A public probe on the same connection proves frames flow, and the secret did not.
    const probe = uniqueChannel("probe");
    await untilSubscribed(probe, readyListener(echo, probe));
    expect(events.items).toEqual([]);
  });
});

describe("presence channels", () => {
  const ids = (members: PresenceUser[] | undefined) => (members ?? []).map((m) => m.id).sort((x, y) => x - y);

  it.each([
    [4, 4],
    [2, 4],
  ] as [ClientVersion, ClientVersion][])("here / joining / leaving between two users (clients %i and %i)", async (v1, v2) => {
    const channel = uniqueChannel("presence-room");
    const taylor = await echoConnected(makeEcho(v1, asUser(1)));
    const t = joinPresence(taylor, channel);
    await until(() => expect(ids(t.here[0])).toEqual([1]));
    const abigail = await echoConnected(makeEcho(v2, asUser(2)));
    const a = joinPresence(abigail, channel);
    await until(() => expect(ids(a.here[0])).toEqual([1, 2]));
    await until(() => expect(t.joining).toEqual([{ id: 2, name: "Abigail" }]));
    abigail.leave(channel.slice("presence-".length));
    await until(() => expect(t.leaving).toEqual([{ id: 2, name: "Abigail" }]));
  });

  it("the same user in two tabs is listed once, joins once, leaves after the last tab", async () => {
    const channel = uniqueChannel("presence-tabs");
    const observer = await echoConnected(makeEcho(4, asUser(3)));
    const o = joinPresence(observer, channel);
    await until(() => expect(ids(o.here[0])).toEqual([3]));
    const tab1 = await echoConnected(makeEcho(4, asUser(1)));
    joinPresence(tab1, channel);
    await until(() => expect(o.joining).toHaveLength(1));
    const tab2 = await echoConnected(makeEcho(2, asUser(1)));
    const second = joinPresence(tab2, channel);
    await until(() => expect(ids(second.here[0])).toEqual([1, 3]));
    tab1.disconnect();
    // Wait past the leave grace: the user still has tab2, so nobody may see leaving.
    await new Promise((r) => setTimeout(r, Number(TEST_VARS.PRESENCE_LEAVE_GRACE) * 3));
    expect(o.leaving).toEqual([]);
    tab2.disconnect();
    await until(() => expect(o.leaving).toEqual([{ id: 1, name: "Taylor" }]));
    expect(o.joining).toEqual([{ id: 1, name: "Taylor" }]);
  });

  it("20 concurrent joins are all present", async () => {
    const channel = uniqueChannel("presence-crowd");
    const users = Array.from({ length: 20 }, (_, i) => 100 + i);
    const crowd = await Promise.all(users.map((id, i) => echoConnected(makeEcho(i % 2 ? 2 : 4, asUser(id)))));
    crowd.forEach((echo) => joinPresence(echo, channel));
    const latecomer = await echoConnected(makeEcho(4, asUser(3)));
    // Each attempt subscribes afresh: joining a channel laravel-echo already joined sends
    // nothing, so an attempt whose subscribe failed (an auth call timing out on a loaded
    // machine) must leave before the next one.
    await until(async () => {
      const l = joinPresence(latecomer, channel);
      try {
        await until(() => expect(l.here.length).toBe(1), 5_000);
        expect(ids(l.here[0])).toEqual([3, ...users]);
      } finally {
        latecomer.leave(channel.slice("presence-".length));
      }
    }, 20_000);
  });

  // channel_data as a JSON string, from Laravel's pusher broadcaster: test/e2e/pusher-auth.test.ts.
  it("a lone member is listed from Laravel's answer", async () => {
    const channel = uniqueChannel("presence-pusher");
    const echo = await echoConnected(makeEcho(4, { auth: { headers: { Authorization: "Bearer 2" } } }));
    const p = joinPresence(echo, channel);
    await until(() => expect(p.here).toEqual([[{ id: 2, name: "Abigail" }]]));
  });

  it("a user who reconnects within the grace does not flap for others", async () => {
    const channel = uniqueChannel("presence-flaky");
    const observer = await echoConnected(makeEcho(4, asUser(3)));
    const o = joinPresence(observer, channel);
    const flaky = await echoConnected(makeEcho(2, asUser(2)));
    const f = joinPresence(flaky, channel);
    await until(() => expect(o.joining).toHaveLength(1));
    await until(() => expect(f.here).toHaveLength(1));
    // The server drops the connection; laravel-echo reconnects and subscribes again.
    const reconnected = new Promise<void>((r) => socketOf(flaky).once("connect", () => r()));
    socketOf(flaky).io.engine.write("9 garbage");
    await reconnected;
    await until(() => expect(f.here).toHaveLength(2));
    await new Promise((r) => setTimeout(r, Number(TEST_VARS.PRESENCE_LEAVE_GRACE) * 3));
    expect(o.leaving).toEqual([]);
    expect(o.joining).toHaveLength(1);
  });
});

describe("whisper", () => {
  it("is relayed to the others, not the sender, on private and presence channels", async () => {
    for (const kind of ["private", "join"] as const) {
      const channel = uniqueChannel(kind === "private" ? "private-chat" : "presence-chat");
      const name = channel.replace(/^(private|presence)-/, "");
      const alice = await echoConnected(makeEcho(4, asUser(1)));
      const bob = await echoConnected(makeEcho(2, asUser(2)));
      const atAlice = collect();
      const atBob = collect();
      alice[kind](name).listenForWhisper("typing", atAlice.push);
      bob[kind](name).listenForWhisper("typing", atBob.push);
      await until(async () => {
        (alice[kind](name) as ReturnType<EchoClient["private"]>).whisper("typing", { who: "alice" });
        expect(atBob.items.length).toBeGreaterThan(0);
      });
      expect(atBob.items[0]).toEqual({ who: "alice" });
      expect(atAlice.items).toEqual([]);
    }
  });

  it("is dropped on public channels, from non-subscribers, and without the client- prefix", async () => {
    const channel = uniqueChannel("private-quiet");
    const publicChannel = uniqueChannel("public-quiet");
    const listener = await echoConnected(makeEcho(4, asUser(2)));
    const heard = collect<{ n: number }>();
    listener.private(channel.slice("private-".length)).listenForWhisper("typing", heard.push).listen(".typing", heard.push);
    listener.channel(publicChannel).listen(".client-typing", heard.push);
    await untilSubscribed(publicChannel, readyListener(listener, publicChannel));

    const sender = await connected(connectSocket(4, { transports: ["websocket"] }));
    const errors = collect();
    sender.on("echo-edge:error", errors.push);
    // The sender whispers on the public channel only once its own subscription is live,
    // so what drops the whisper is the public-channel rule, not a link still opening.
    const atSender = collect();
    sender.on("echo-edge.test.ready", (name: string) => name === publicChannel && atSender.push(name));
    sender.emit("subscribe", { channel: publicChannel, auth: {} });
    await untilSubscribed(publicChannel, () => atSender.items);
    sender.emit("client event", { channel: publicChannel, event: "client-typing", data: { n: 1 } });
    // An answer on the sender's connection shows the whisper was handled; a message
    // published after that reaches the listener, the whisper did not.
    sender.emit("echo-edge.test.unknown");
    await until(() => expect(errors.items).toContainEqual(expect.objectContaining({ event: "echo-edge.test.unknown" })));
    const after = collect();
    listener.channel(publicChannel).listen(".echo-edge.test.after", after.push);
    await publishBatch([{ channel: publicChannel, event: "echo-edge.test.after", data: {} }]);
    await until(() => expect(after.items).toHaveLength(1));
    expect(heard.items).toEqual([]);

    sender.emit("client event", { channel, event: "client-typing", data: { n: 2 } }); // not subscribed
    sender.emit("subscribe", { channel, auth: { headers: { Authorization: "Bearer 1" } } });
    await until(async () => {
      sender.emit("client event", { channel, event: "typing", data: { n: 3 } }); // no client- prefix
      sender.emit("client event", { channel, event: "client-typing", data: { n: 4 } });
      expect(heard.items.length).toBeGreaterThan(0);
    });
    expect(new Set(heard.items.map((m) => m.n))).toEqual(new Set([4]));
    expect(errors.items.length).toBeGreaterThan(0);
  });
});

describe("bad input from one client: an error for that caller, others unaffected", () => {
  it("answers malformed subscribe/unsubscribe/whisper/unknown events with errors and keeps serving", async () => {
    const channel = uniqueChannel("steady");
    const bystander = await echoConnected(makeEcho(2));
    const seen = collect();
    bystander.channel(channel).listen(".Tick", seen.push);
    await untilSubscribed(channel, readyListener(bystander, channel));

    const bad = await connected(connectSocket(4, { transports: ["websocket"] }));
    const subscriptionErrors = collect<[unknown, unknown]>();
    const errors = collect<{ event: unknown }>();
    bad.on("subscription_error", (c: unknown, s: unknown) => subscriptionErrors.push([c, s]));
    bad.on("echo-edge:error", errors.push);
    bad.emit("subscribe");
    bad.emit("subscribe", null);
    bad.emit("subscribe", { channel: "bad name with spaces" });
    bad.emit("subscribe", { channel: "x".repeat(500) });
    bad.emit("unsubscribe");
    bad.emit("client event");
    bad.emit("what-is-this", { x: 1 });
    await until(() => expect(subscriptionErrors.items).toHaveLength(4));
    expect(subscriptionErrors.items).toEqual([
      [null, 400],
      [null, 400],
      ["bad name with spaces", 400],
      ["x".repeat(500), 400],
    ]);
    await until(() => expect(errors.items.map((e) => e.event)).toEqual(["unsubscribe", "client event", "what-is-this"]));
    expect(bad.connected).toBe(true);

    await publishBatch([{ channel, event: "Tick", data: { after: true } }]);
    await until(() => expect(seen.items).toContainEqual({ after: true }));
  });

  it("rejects bad publish bodies with 400/401 and still delivers good ones", async () => {
    const channel = uniqueChannel("publish-guard");
    const echo = await echoConnected(makeEcho(4));
    const seen = collect();
    echo.channel(channel).listen(".Ok", seen.push);
    await untilSubscribed(channel, readyListener(echo, channel));
    const url = `${workerUrl()}/apps/app`;

    const badJson = await fetch(`${url}/events?auth_key=secret-key`, { method: "POST", body: "{nope" });
    expect(badJson.status).toBe(400);
    const missing = await publishEvent({ channel, name: "Ok" } as never);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toEqual({ error: "Event must include channel, event name and data" });
    const wrongKey = await fetch(`${url}/events?auth_key=nope`, { method: "POST", body: "{}" });
    expect(wrongKey.status).toBe(403);
    expect(await wrongKey.json()).toEqual({ error: "Unauthorized" });
    const unsigned = await fetch(`${url}/publish`, { method: "POST", body: JSON.stringify({ messages: [] }) });
    expect(unsigned.status).toBe(401);
    const forged = await fetch(`${url}/publish`, {
      method: "POST",
      headers: { "x-echo-timestamp": String(Date.now()), "x-echo-signature": "v1=" + "00".repeat(32) },
      body: JSON.stringify({ messages: [{ channel, event: "Ok", data: { forged: true } }] }),
    });
    expect(forged.status).toBe(401);

    const mixed = await publishBatch([
      { channel: "bad name", event: "Ok", data: {} },
      { channel, event: "Ok", data: { good: true } },
    ]);
    expect(await mixed.json()).toEqual({ accepted: 1, rejected: 1 });
    await until(() => expect(seen.items).toContainEqual({ good: true }));
    expect(seen.items).not.toContainEqual({ forged: true });
  });

  it("a retried bridge batch (same id) is delivered once", async () => {
    const channel = uniqueChannel("once");
    const echo = await echoConnected(makeEcho(4));
    const seen = collect();
    echo.channel(channel).listen(".Once", seen.push);
    await untilSubscribed(channel, readyListener(echo, channel));
    const id = crypto.randomUUID();
    await publishBatch([{ channel, event: "Once", data: { n: 1 } }], id);
    await publishBatch([{ channel, event: "Once", data: { n: 1 } }], id);
    await publishBatch([{ channel, event: "Once", data: { n: 2 } }]);
    await until(() => expect(seen.items).toContainEqual({ n: 2 }));
    expect(seen.items).toEqual([{ n: 1 }, { n: 2 }]);
  });
});
