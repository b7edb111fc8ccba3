/**
 * Connection state recovery seen by laravel-echo on socket.io-client 4: a client whose
 * connection is lost (its transport closed under it, or the worker restarted as a
 * deploy restarts it) gets back its socket id, its channels and every event it
 * missed, once and in order, with `socket.recovered` true; after RECOVERY_WINDOW it
 * starts afresh. A socket.io-client 2 client next to it keeps working as today.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import {
  authRequestsFor,
  closeAll,
  collect,
  echoConnected,
  joinPresence,
  makeEcho,
  publishEvent,
  rawSocket,
  uniqueChannel,
  until,
  type EchoClient,
} from "../support/clients.ts";
import { startTestBridge } from "../support/bridge.ts";
import { laravelBroadcast } from "../support/laravel.ts";
import { TEST_APP, TEST_VARS } from "../support/stack.ts";
import { freePort, startWorker, type RunningWorker } from "../support/worker.ts";

afterEach(closeAll);

const asUser = (id: number) => ({ auth: { headers: { Authorization: `Bearer ${id}` } } });

/** The socket.io-client socket under laravel-echo, with what recovery adds to it. */
type RecoveringSocket = {
  id: string;
  connected: boolean;
  recovered: boolean;
  io: { engine: { close(): void }; once(event: string, listener: () => void): void };
  once(event: string, listener: () => void): void;
};
const socketOf = (echo: EchoClient) => echo.connector.socket as unknown as RecoveringSocket;

/** Closes the client's transport as a network loss would; resolves once the client is connected again. */
function loseConnection(echo: EchoClient): Promise<void> {
  const socket = socketOf(echo);
  const back = new Promise<void>((resolve) => socket.io.once("reconnect", () => resolve()));
  socket.io.engine.close();
  return back.then(() => until(() => expect(socket.connected).toBe(true)));
}

/** Events the listener received, by their `n`. */
function listen(echo: EchoClient, channel: string, isPrivate = false) {
  const received = collect<{ n: number }>();
  (isPrivate ? echo.private(channel.slice("private-".length)) : echo.channel(channel)).listen(".Tick", received.push);
  return received.items;
}
const ns = (items: { n: number }[]) => items.map((item) => item.n);
/** What arrived after the first event (n = 0), which each test publishes until it is received. */
const after = (items: { n: number }[]) => ns(items).filter((n) => n > 0);

describe("a Socket.IO v4 client whose transport is closed under it", () => {
  // Slow reconnects, so the publishes below happen while the clients are away.
  const away = { reconnectionDelay: 1500, reconnectionDelayMax: 1500 };

  it.each([
    ["WebSocket only", { transports: ["websocket"] }],
    ["long-polling first, then the upgrade", { transports: ["polling", "websocket"] }],
  ])("recovers its socket id, channels and the 5 events it missed, once and in order (%s)", async (_, transports) => {
    const channel = uniqueChannel("private-recover");
    const echo = await echoConnected(makeEcho(4, { ...asUser(1), ...away, ...transports }));
    const v2 = await echoConnected(makeEcho(2, { ...asUser(2), ...away }));
    const received = listen(echo, channel, true);
    const receivedByV2 = listen(v2, channel, true);
    await until(async () => {
      expect((await publishEvent({ channel, name: "Tick", data: { n: 0 } })).status).toBe(200);
      expect(ns(received)).toContain(0);
      expect(ns(receivedByV2)).toContain(0);
    });
    const socketId = socketOf(echo).id;

    const back = Promise.all([loseConnection(echo), loseConnection(v2)]);
    for (let n = 1; n <= 5; n++) expect((await publishEvent({ channel, name: "Tick", data: { n } })).status).toBe(200);
    await back;

    expect(socketOf(echo).recovered).toBe(true);
    expect(socketOf(echo).id).toBe(socketId);
    expect((await publishEvent({ channel, name: "Tick", data: { n: 6 } })).status).toBe(200);
    await until(() => expect(after(received)).toEqual([1, 2, 3, 4, 5, 6]));
    // laravel-echo subscribed again after the reconnect: the recovered channel needed no second auth.
    expect((await authRequestsFor(channel)).filter((r) => r.headers.authorization === "Bearer 1")).toHaveLength(1);
    // socket.io-client 2 cannot recover: it resubscribes and receives from then on.
    await until(() => expect(ns(receivedByV2)).toContain(6));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(after(received)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe("a forged recovery", () => {
  it("claiming another client's socket id (which Laravel shares with everyone) takes nothing from it", async () => {
    const channel = uniqueChannel("victim");
    const victim = await echoConnected(makeEcho(4));
    const received = listen(victim, channel);
    await until(async () => {
      expect((await publishEvent({ channel, name: "Tick", data: { n: 0 } })).status).toBe(200);
      expect(ns(received)).toContain(0);
    });
    // Same Engine.IO version and colo: the same connection host as the victim.
    const forger = await rawSocket("EIO=4&transport=websocket");
    forger.ws.send("40" + JSON.stringify({ pid: `${socketOf(victim).id}:1.1`, offset: `1~${channel}` }));
    await until(() => expect(forger.frames.some((frame) => frame.startsWith("40{"))).toBe(true));
    expect(forger.frames.find((frame) => frame.startsWith("40{"))).not.toContain(socketOf(victim).id);

    expect((await publishEvent({ channel, name: "Tick", data: { n: 1 } })).status).toBe(200);
    await until(() => expect(after(received)).toEqual([1]));
    expect(forger.frames.filter((frame) => frame.startsWith("42"))).toEqual([]);
  });
});

describe("across a worker restart (a deploy)", () => {
  const PREFIX = `e2e_recovery_${process.pid}_`;
  let worker: RunningWorker;
  let port: number;
  let state: string;
  let redis: Redis;
  const vars = { ...TEST_VARS, AUTH_HOST: "" };

  beforeAll(async () => {
    port = await freePort();
    state = mkdtempSync(join(tmpdir(), "echo-edge-recovery-"));
    vars.AUTH_HOST = inject("authUrl");
    worker = await startWorker(vars, { port, persistTo: state });
    redis = new Redis("redis://127.0.0.1:6379");
  });
  afterAll(async () => {
    await worker?.stop();
    redis?.disconnect();
    rmSync(state, { recursive: true, force: true });
  });

  it("delivers the 10 events published through Redis and the bridge while it was down, once and in order; presence sees no leaving or joining", async () => {
    const bridge = await startTestBridge(worker.url, PREFIX, { BRIDGE_RETRY_MAX_MS: "500" });
    try {
      const channel = uniqueChannel("presence-deploy");
      const echo = await echoConnected(makeEcho(4, asUser(1), worker.url));
      const observer = await echoConnected(makeEcho(4, asUser(2), worker.url));
      const v2 = await echoConnected(makeEcho(2, asUser(3), worker.url));
      const seen = joinPresence(observer, channel);
      await until(() => expect(seen.here).toHaveLength(1));
      const received = collect<{ n: number }>();
      echo.join(channel.slice("presence-".length)).listen(".Tick", received.push);
      const receivedByV2 = collect<{ n: number }>();
      v2.join(channel.slice("presence-".length)).listen(".Tick", receivedByV2.push);
      await until(() => expect(seen.joining.map((user) => user.id).sort()).toEqual([1, 3]));
      await until(async () => {
        await laravelBroadcast(redis, PREFIX, [channel], "Tick", { n: 0 });
        expect(ns(received.items)).toContain(0);
      });
      const socketId = socketOf(echo).id;

      const back = new Promise<void>((resolve) => socketOf(echo).io.once("reconnect", () => resolve()));
      await worker.stop();
      for (let n = 1; n <= 10; n++) await laravelBroadcast(redis, PREFIX, [channel], "Tick", { n });
      await until(() => expect(bridge.stats().worker.state).toBe("unreachable"));
      worker = await startWorker(vars, { port, persistTo: state });
      await back;
      await until(() => expect(socketOf(echo).connected).toBe(true));

      expect(socketOf(echo).recovered).toBe(true);
      expect(socketOf(echo).id).toBe(socketId);
      await until(() => expect(after(received.items)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
      await laravelBroadcast(redis, PREFIX, [channel], "Tick", { n: 11 });
      await until(() => expect(after(received.items)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
      // The v2 client lost what was published while it was away, as today, and goes on once it has subscribed again.
      let n = 12;
      await until(async () => {
        await laravelBroadcast(redis, PREFIX, [channel], "Tick", { n: n++ });
        expect(Math.max(...ns(receivedByV2.items))).toBeGreaterThan(10);
      });
      expect(after(received.items).slice(0, 11)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
      expect(seen.leaving.filter((user) => user.id === 1)).toEqual([]);
      expect(seen.joining.filter((user) => user.id === 1)).toEqual([{ id: 1, name: "Taylor" }]);
    } finally {
      await bridge.stop();
    }
  });
});

describe("after RECOVERY_WINDOW", () => {
  let worker: RunningWorker;
  beforeAll(async () => {
    worker = await startWorker({ ...TEST_VARS, AUTH_HOST: inject("authUrl"), RECOVERY_WINDOW: "500" });
  });
  afterAll(() => worker?.stop());

  it("a client coming back later starts a fresh session and subscribes again as today", async () => {
    const channel = uniqueChannel("private-late");
    const echo = await echoConnected(makeEcho(4, { ...asUser(1), reconnectionDelay: 1500, reconnectionDelayMax: 1500 }, worker.url));
    const received = listen(echo, channel, true);
    const publish = (n: number) =>
      fetch(`${worker.url}/apps/${TEST_APP.appId}/events`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${TEST_APP.key}` },
        body: JSON.stringify({ channel, name: "Tick", data: { n } }),
      });
    await until(async () => {
      expect((await publish(0)).status).toBe(200);
      expect(ns(received)).toContain(0);
    });
    const socketId = socketOf(echo).id;

    await loseConnection(echo);
    expect(socketOf(echo).recovered).toBe(false);
    expect(socketOf(echo).id).not.toBe(socketId);
    // laravel-echo's resubscribe asks Laravel again, and events flow.
    await until(async () => expect((await authRequestsFor(channel)).filter((r) => r.headers.authorization === "Bearer 1")).toHaveLength(2));
    await until(async () => {
      expect((await publish(1)).status).toBe(200);
      expect(ns(received)).toContain(1);
    });
  });
});
