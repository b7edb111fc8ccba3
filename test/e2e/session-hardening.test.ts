/**
 * Issue 9, items 4, 6 and 7: what one client connection can make the edge do.
 * Subscribes are rate limited and auth calls bounded, so a burst of subscribe/
 * unsubscribe pairs barely reaches Laravel; whispers are bounded by bytes; the
 * auth request carries the client's credentials and nothing it could spoof. Driven
 * by real clients against the shared worker, with its default limits.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import {
  authRequestsFor,
  authRequestsWithPrefix,
  closeAll,
  collect,
  connectSocket,
  connected,
  echoConnected,
  makeEcho,
  publishBatch,
  uniqueChannel,
  until,
} from "../support/clients.ts";

afterEach(closeAll);

const asUser = (id: number) => ({ headers: { Authorization: `Bearer ${id}` } });
const channelOf = (request: { body: string }) => new URLSearchParams(request.body).get("channel_name");

/** Publishes until `received` shows the subscription is live (subscribe has no acknowledgement). */
async function untilReceiving(channel: string, received: () => unknown[]): Promise<void> {
  await until(async () => {
    await publishBatch([{ channel, event: "Ready", data: {} }]);
    expect(received().length).toBeGreaterThan(0);
  });
}

/** A raw socket.io-client 4 connection, as a hostile script would open one. */
const rawClient = () => connected(connectSocket(4, { transports: ["websocket"] }));

describe("one connection cannot hammer Laravel", () => {
  it("300 subscribe/unsubscribe pairs of private channels in one burst cause a few dozen auth requests at most; that connection and others stay healthy", async () => {
    const bystander = await echoConnected(makeEcho(2));
    const quiet = uniqueChannel("bystander");
    const heard = collect();
    bystander.channel(quiet).listen(".Ready", heard.push);
    await untilReceiving(quiet, () => heard.items);

    const prefix = uniqueChannel("private-burst") + ".";
    // Over long-polling the whole burst reaches the server in one or two requests, so
    // what the limits let through does not depend on how busy this machine is (over a
    // WebSocket each frame is its own event, and the rate refills while they trickle in).
    const socket = await connected(connectSocket(4, { transports: ["polling"] }));
    const refused = collect<string>();
    socket.on("subscription_error", (channel: string, status: number) => {
      if (status === 429) refused.push(channel);
    });
    for (let i = 0; i < 300; i++) {
      socket.emit("subscribe", { channel: prefix + i, auth: asUser(1) });
      socket.emit("unsubscribe", { channel: prefix + i });
    }

    // The same connection subscribes again once its rate allows, and receives.
    const healthy = uniqueChannel("private-after-burst");
    const received = collect();
    socket.on("Ready", (channel: string) => channel === healthy && received.push(channel));
    await until(async () => {
      socket.emit("subscribe", { channel: healthy, auth: asUser(1) });
      await publishBatch([{ channel: healthy, event: "Ready", data: {} }]);
      expect(received.items.length).toBeGreaterThan(0);
    }, 15_000);
    expect(socket.connected).toBe(true);

    const requests = await authRequestsWithPrefix(prefix);
    expect(requests.length).toBeLessThanOrEqual(50);
    // SUBSCRIBE_BURST (40) got in, plus what SUBSCRIBE_RATE refilled while the burst travelled.
    expect(refused.items.length).toBeGreaterThanOrEqual(200);
    // A refused subscribe never reached Laravel.
    const asked = new Set(requests.map(channelOf));
    expect(refused.items.filter((channel) => asked.has(channel))).toEqual([]);

    const after = heard.items.length;
    await publishBatch([{ channel: quiet, event: "Ready", data: { after: true } }]);
    await until(() => expect(heard.items.length).toBeGreaterThan(after));
  });

  it("a page with more private channels than auth calls in flight still gets every one of them", async () => {
    const echo = await echoConnected(makeEcho(4, { auth: asUser(1) }));
    const channels = Array.from({ length: 30 }, (_, i) => uniqueChannel(`private-page${i}`));
    const received = collect<{ channel: string }>();
    for (const channel of channels) echo.private(channel.slice("private-".length)).listen(".Hello", received.push);
    await until(async () => {
      await publishBatch(channels.map((channel) => ({ channel, event: "Hello", data: { channel } })));
      expect(new Set(received.items.map((m) => m.channel)).size).toBe(30);
    }, 20_000);
  });
});

describe("whisper volume is bounded by bytes (WHISPER_BYTES)", () => {
  it("drops whispers beyond the byte budget sent in a burst; the sender keeps whispering within it", async () => {
    const channel = uniqueChannel("private-canvas");
    const name = channel.slice("private-".length);
    const listener = await echoConnected(makeEcho(4, { auth: asUser(2) }));
    const strokes = collect<{ n: number }>();
    const marks = collect();
    listener.private(name).listenForWhisper("stroke", strokes.push).listenForWhisper("mark", marks.push);
    const sender = await rawClient();
    sender.emit("subscribe", { channel, auth: asUser(1) });
    const mark = () => sender.emit("client event", { channel, event: "client-mark", data: {} });
    await until(() => {
      mark();
      expect(marks.items.length).toBeGreaterThan(0);
    });

    // A second without whispers refills the count limit (WHISPER_RATE 20 a second), so only the byte limit is at play:
    // 20 whispers of 60 kB are within the count, and over a megabyte.
    await new Promise((r) => setTimeout(r, 1100));
    const pad = "x".repeat(60_000);
    for (let n = 0; n < 20; n++) sender.emit("client event", { channel, event: "client-stroke", data: { n, pad } });
    // Whispers are handled in order: once a later one arrives, the burst has been dealt with.
    const seen = marks.items.length;
    await until(() => {
      mark();
      expect(marks.items.length).toBeGreaterThan(seen);
    }, 15_000);
    // 64 KiB a second lets the first through at once and then about one a second.
    expect(strokes.items.length).toBeGreaterThanOrEqual(1);
    expect(strokes.items.length).toBeLessThanOrEqual(5);
    expect(strokes.items[0]).toEqual({ n: 0, pad });
    expect(sender.connected).toBe(true);
  });
});

describe("the auth request to Laravel", () => {
  it("carries the client's credentials, CSRF tokens and its real socket id, and nothing a client could spoof", async () => {
    const spoofed = {
      "X-Requested-With": "fetch",
      "X-Socket-Id": "1.1",
      "X-Forwarded-For": "203.0.113.9",
      "X-Forwarded-Host": "evil.example",
      "X-Forwarded-Proto": "http",
      "X-Real-IP": "203.0.113.9",
      "CF-Connecting-IP": "203.0.113.9",
      "CF-IPCountry": "XX",
      "CF-Access-Authenticated-User-Email": "admin@example.com",
      Connection: "x-evil",
      "Keep-Alive": "timeout=600",
      TE: "trailers",
      Trailer: "X-Evil",
      "Transfer-Encoding": "x-evil",
      Upgrade: "h2c",
      "Proxy-Authorization": "Basic ZXZpbDpldmls",
      "Proxy-Connection": "keep-alive",
      Host: "evil.example",
      "Content-Length": "1",
      "X-Tenant": "someone-else",
    };
    const credentials = {
      Authorization: "Bearer 1",
      Cookie: "laravel_session=1; XSRF-TOKEN=xsrf-cookie",
      "X-CSRF-TOKEN": "csrf-token",
      "X-XSRF-TOKEN": "xsrf-token",
    };
    const echo = await echoConnected(makeEcho(4, { auth: { headers: { ...spoofed, ...credentials } } }));
    const channel = uniqueChannel("private-headers");
    const events = collect();
    echo.private(channel.slice("private-".length)).listen(".Ready", events.push);
    await untilReceiving(channel, () => events.items);

    const [request, ...rest] = await authRequestsFor(channel);
    expect(rest).toEqual([]);
    const socketId = echo.socketId()!;
    expect(request!.body).toBe(new URLSearchParams({ channel_name: channel, socket_id: socketId }).toString());
    const headers = request!.headers;
    expect(headers).toMatchObject({
      authorization: "Bearer 1",
      cookie: "laravel_session=1; XSRF-TOKEN=xsrf-cookie",
      "x-csrf-token": "csrf-token",
      "x-xsrf-token": "xsrf-token",
      "x-requested-with": "XMLHttpRequest",
      "x-socket-id": socketId,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
      host: new URL(inject("authUrl")).host,
      "content-length": String(request!.body.length),
    });
    // The ones set above by us (x-requested-with, x-socket-id) or by HTTP itself (host, content-length, connection) carry our values.
    const ours = ["x-requested-with", "x-socket-id", "host", "content-length", "connection"];
    const leaked = Object.keys(spoofed).filter((name) => !ours.includes(name.toLowerCase()) && name.toLowerCase() in headers);
    expect(leaked).toEqual([]);
    expect(Object.values(headers).filter((value) => /203\.0\.113\.9|evil/.test(String(value)))).toEqual([]);
  });
});
