/**
 * Connection hosts inside workerd: client WebSockets opened through the Worker (as
 * clients open them) land in a ConnectionHostObject; evicting the host keeps its
 * sockets (hibernation), and the rebuilt host still answers heartbeats, delivers and
 * lets clients leave. A host that starts again with no sockets is a new incarnation.
 */
import { SELF, env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { channelObjectName } from "../../worker/channels/names.ts";
import { hostName } from "../../worker/engine/forwarding.ts";

const APP = { appId: "app", key: "secret-key" };
/** The colo the tests' requests claim, so they know which host they land in. */
const COLO = "TST";

const waitFor = (check: () => void | Promise<void>) => vi.waitFor(check, { timeout: 5000, interval: 10 });

const hostOf = (version: 3 | 4) => env.HOST.getByName(hostName(APP.appId, version, COLO, 0));

/** A raw Engine.IO WebSocket client through the Worker, keeping every frame it receives. */
async function connect(version: 3 | 4) {
  const response = await SELF.fetch(`https://worker.test/socket.io/?EIO=${version}&transport=websocket`, {
    headers: { upgrade: "websocket" },
    cf: { colo: COLO },
  });
  const ws = response.webSocket;
  if (!ws) throw new Error(`no WebSocket: ${response.status} ${await response.text()}`);
  ws.accept();
  const frames: string[] = [];
  ws.addEventListener("message", (event) => void frames.push(String(event.data)));
  const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
  await waitFor(() => expect(frames[0]).toMatch(/^0\{/));
  if (version === 4) ws.send("40");
  await waitFor(() => expect(frames.some((frame) => frame.startsWith("40"))).toBe(true));
  frames.length = 0;
  return { ws, frames, closed };
}

function channelStub(channel: string) {
  return env.CHANNEL.getByName(channelObjectName(APP.appId, channel));
}

async function subscribe(client: { ws: WebSocket }, channel: string, count: number) {
  client.ws.send(`42${JSON.stringify(["subscribe", { channel }])}`);
  await waitFor(async () => expect((await channelStub(channel).info()).subscription_count).toBe(count));
}

function publish(channel: string, name: string, data: unknown) {
  return SELF.fetch(`https://worker.test/apps/${APP.appId}/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${APP.key}`, "content-type": "application/json" },
    body: JSON.stringify({ channel, name, data }),
  });
}

const emptyDelivery = { channel: "nobody", frames: [], excluded: [], firstSeq: null };

describe("a connection host across eviction", () => {
  it("Engine.IO 4: pongs are absorbed without waking it, and the rebuilt host pings, delivers and lets clients leave", async () => {
    const channel = "host-eio4";
    const subscriber = await connect(4);
    const other = await connect(4);
    await subscribe(subscriber, channel, 1);
    const host = hostOf(4);
    const { incarnation } = await host.deliver(emptyDelivery);

    await evictDurableObject(host);
    // The pong's auto-response `6` comes from the runtime, the host stays evicted.
    subscriber.ws.send("3");
    await waitFor(() => expect(subscriber.frames).toEqual(["6"]));
    subscriber.frames.length = 0;

    expect((await publish(channel, "After", { n: 1 })).status).toBe(200);
    // Socket.IO v4 sessions can recover: each event carries its offset (the channel's first frame), also after eviction.
    await waitFor(() => expect(subscriber.frames).toEqual([`42${JSON.stringify(["After", channel, { n: 1 }, `1~${channel}`])}`]));
    expect(other.frames).toEqual([]);
    expect((await host.deliver(emptyDelivery)).incarnation).toBe(incarnation);

    // One alarm pass pings every Engine.IO 4 client.
    await evictDurableObject(host);
    expect(await runDurableObjectAlarm(host)).toBe(true);
    await waitFor(() => expect(subscriber.frames.at(-1)).toBe("2"));
    await waitFor(() => expect(other.frames).toEqual(["2"]));

    await evictDurableObject(host);
    subscriber.ws.close(1000);
    await waitFor(async () => expect((await channelStub(channel).info()).subscription_count).toBe(0));
    other.ws.close(1000);
  }, 20_000);

  it("Engine.IO 3: pings are answered by auto-response before and after eviction, and the rebuilt host delivers and unsubscribes", async () => {
    const channel = "host-eio3";
    const client = await connect(3);
    client.ws.send("2");
    await waitFor(() => expect(client.frames).toEqual(["3"]));
    await subscribe(client, channel, 1);
    client.frames.length = 0;

    const host = hostOf(3);
    await evictDurableObject(host);
    client.ws.send("2");
    await waitFor(() => expect(client.frames).toEqual(["3"]));

    expect((await publish(channel, "After", { n: 3 })).status).toBe(200);
    await waitFor(() => expect(client.frames).toEqual(["3", `42${JSON.stringify(["After", channel, { n: 3 }])}`]));

    await evictDurableObject(host);
    client.ws.send(`42${JSON.stringify(["unsubscribe", { channel }])}`);
    await waitFor(async () => expect((await channelStub(channel).info()).subscription_count).toBe(0));
    expect((await publish(channel, "Gone", {})).status).toBe(200);
    client.ws.close(1000);
  });
});

describe("incarnation", () => {
  it("is kept while the host has sockets and replaced when it starts again without any", async () => {
    const client = await connect(4);
    const host = hostOf(4);
    const { incarnation } = await host.deliver(emptyDelivery);
    await evictDurableObject(host);
    expect((await host.deliver(emptyDelivery)).incarnation).toBe(incarnation);

    // Sockets gone with the host, as a deploy drops them.
    await evictDurableObject(host, { webSockets: "close" });
    await client.closed;
    const restarted = (await host.deliver(emptyDelivery)).incarnation;
    expect(restarted).not.toBe(incarnation);
    // And kept from then on while nothing changes.
    expect((await host.deliver(emptyDelivery)).incarnation).toBe(restarted);
  });
});
