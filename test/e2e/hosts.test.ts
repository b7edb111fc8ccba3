/**
 * Connection hosts seen by real clients (laravel-echo with socket.io-client 2 and 4):
 * an idle host hibernates and its clients keep working, and a channel whose
 * subscribers sit on two hosts (Engine.IO 3 and 4 clients go to different hosts)
 * delivers each message to each of them once and in order.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { closeAll, collect, echoConnected, makeEcho, publishEvent, uniqueChannel, until } from "../support/clients.ts";
import { TEST_APP, TEST_VARS } from "../support/stack.ts";
import { startLocalEdge, type LocalEdge } from "../../scripts/local-edge.ts";
import { startWorker, type RunningWorker } from "../support/worker.ts";

afterEach(closeAll);

/** workerd evicts an object idle for ten seconds, checking every ten (so within 20 s; measured). */
const HIBERNATED_WITHIN_MS = 25_000;

describe("an idle connection host", () => {
  // Heartbeats as in production, so nothing wakes the hosts while the clients sit idle.
  // One workerd process: across the local edge's two tiers, miniflare's dev registry
  // keeps the connection of a host's call to a channel object open, which keeps the
  // host awake (measured; production has no such proxy).
  let edge: LocalEdge;
  let output = "";
  const idle = { url: "", output: () => output };
  beforeAll(async () => {
    edge = await startLocalEdge({
      vars: { ...TEST_VARS, PING_INTERVAL: "25000", PING_TIMEOUT: "20000" },
      tiers: 1,
      onLog: (line) => (output += line + "\n"),
    });
    idle.url = edge.url;
  });
  afterAll(() => edge?.stop());

  const publish = (channel: string, data: unknown) =>
    fetch(`${idle.url}/apps/${TEST_APP.appId}/events`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${TEST_APP.key}` },
      body: JSON.stringify({ channel, name: "Tick", data }),
    });

  it("hibernates, and its clients (socket.io-client 2 and 4) still receive once it is woken and rebuilt", async () => {
    const channel = uniqueChannel("idle");
    const clients = await Promise.all(([2, 4] as const).map((version) => echoConnected(makeEcho(version, {}, idle.url))));
    const received = clients.map((echo) => {
      const items = collect();
      echo.channel(channel).listen(".Tick", items.push);
      return items;
    });
    await until(async () => {
      expect((await publish(channel, { probe: true })).status).toBe(200);
      for (const items of received) expect(items.items.length).toBeGreaterThan(0);
    });
    const linesBefore = idle.output().split("\n").length - 1;

    await new Promise((resolve) => setTimeout(resolve, HIBERNATED_WITHIN_MS));
    expect((await publish(channel, { after: "hibernation" })).status).toBe(200);
    await until(() => {
      for (const items of received) expect(items.items.at(-1)).toEqual({ after: "hibernation" });
    });
    // Both hosts (Engine.IO 3 and 4) were rebuilt from their sockets' attachments to deliver it.
    const restored = idle.output().split("\n").slice(linesBefore).filter((line) => line.includes("host_restored"));
    expect(restored.some((line) => line.includes("/eio3/"))).toBe(true);
    expect(restored.some((line) => line.includes("/eio4/"))).toBe(true);
    for (const echo of clients) expect(echo.connector.socket.connected).toBe(true);
  }, 60_000);
});

describe("a channel served by two hosts", () => {
  it("delivers each message once and in order to Engine.IO 3 and 4 clients", async () => {
    const channel = uniqueChannel("two-hosts");
    const clients = await Promise.all(([2, 4] as const).map((version) => echoConnected(makeEcho(version))));
    const received = clients.map((echo) => {
      const items = collect<{ n?: number }>();
      echo.channel(channel).listen(".Tick", items.push);
      return items;
    });
    await until(async () => {
      await publishEvent({ channel, name: "Tick", data: { probe: true } });
      for (const items of received) expect(items.items.length).toBeGreaterThan(0);
    });
    for (let n = 1; n <= 20; n++) expect((await publishEvent({ channel, name: "Tick", data: { n } })).status).toBe(200);
    const numbered = (items: { n?: number }[]) => items.filter((item) => item.n !== undefined).map((item) => item.n);
    const all = Array.from({ length: 20 }, (_, i) => i + 1);
    await until(() => {
      for (const items of received) expect(numbered(items.items)).toHaveLength(20);
    });
    // Nothing more arrives late: once per client, in publish order.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const items of received) expect(numbered(items.items)).toEqual(all);
  });
});

describe("a full connection host", () => {
  let small: RunningWorker;
  beforeAll(async () => {
    small = await startWorker({ ...TEST_VARS, HOST_CAPACITY: "1" });
  });
  afterAll(() => small?.stop());

  it("sends the next WebSocket to the next shard: with HOST_CAPACITY=1 three clients connect and each receives", async () => {
    const channel = uniqueChannel("sharded");
    const clients = await Promise.all([4, 4, 2].map((version) => echoConnected(makeEcho(version as 2 | 4, {}, small.url))));
    const received = clients.map((echo) => {
      const items = collect();
      echo.channel(channel).listen(".Tick", items.push);
      return items;
    });
    await until(async () => {
      const response = await fetch(`${small.url}/apps/${TEST_APP.appId}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TEST_APP.key}` },
        body: JSON.stringify({ channel, name: "Tick", data: { probe: true } }),
      });
      expect(response.status).toBe(200);
      for (const items of received) expect(items.items.length).toBeGreaterThan(0);
    });
    // The two Engine.IO 4 clients share a version and colo: the second found shard 0 full.
    expect(small.output()).toMatch(/"event":"host_full","host":"[^"]+\/eio4\/0\/app"/);
  });
});
