/**
 * Issue 4's outage case end to end: the worker is unreachable from the bridge for
 * 5 s while Laravel publishes 2,000 messages at 200/s; a connected laravel-echo
 * client still gets every one, in order, once.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningBridge } from "../../bridge/bridge.ts";
import { startTestBridge } from "../support/bridge.ts";
import { closeAll, collect, echoConnected, makeEcho, uniqueChannel, until, workerUrl } from "../support/clients.ts";
import { freePort } from "../support/worker.ts";

const PREFIX = `e2e_outage_${process.pid}_`;
const TOTAL = 2000;
const RATE = 200;

/** A TCP hop between bridge and worker that the test can cut and restore. */
class Cable {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  readonly port: number;
  private readonly target: number;

  constructor(port: number, target: number) {
    this.port = port;
    this.target = target;
  }

  async plug(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target, "127.0.0.1");
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("close", () => this.sockets.delete(socket));
        socket.on("error", () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, "127.0.0.1", resolve));
  }

  async unplug(): Promise<void> {
    const closed = new Promise((resolve) => this.server?.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.server = null;
  }
}

let cable: Cable;
let bridge: RunningBridge;
let redis: Redis;

beforeAll(async () => {
  cable = new Cable(await freePort(), Number(new URL(workerUrl()).port));
  await cable.plug();
  bridge = await startTestBridge(`http://127.0.0.1:${cable.port}`, PREFIX, { BRIDGE_RETRY_MAX_MS: "1000" });
  redis = new Redis("redis://127.0.0.1:6379");
});

afterAll(async () => {
  closeAll();
  await bridge?.stop();
  await redis?.quit();
  await cable?.unplug();
});

it("delivers 2,000 messages published at 200/s across a 5 s worker outage, in order, once", { timeout: 60_000 }, async () => {
  const channel = uniqueChannel("outage");
  const echo = await echoConnected(makeEcho(4));
  const received = collect<{ seq: number }>();
  const ready = collect();
  echo.channel(channel).listen(".Seq", received.push).listen(".Ready", ready.push);
  const publish = (event: string, data: object) =>
    redis.publish(PREFIX + channel, JSON.stringify({ event, data: { ...data, socket: null }, socket: null }));
  await until(async () => {
    await publish("Ready", {});
    expect(ready.items.length).toBeGreaterThan(0);
  });

  let sent = 0;
  const publishing = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      void publish("Seq", { seq: sent++ });
      if (sent === TOTAL) {
        clearInterval(timer);
        resolve();
      }
    }, 1000 / RATE);
  });
  await until(() => expect(sent).toBeGreaterThanOrEqual(RATE));
  await cable.unplug();
  const cutAt = sent;
  await new Promise((r) => setTimeout(r, 5000));
  expect(bridge.stats().worker.state).not.toBe("ok");
  await cable.plug();
  await publishing;

  await until(() => expect(received.items.length).toBe(TOTAL), 30_000);
  expect(cutAt).toBeLessThan(TOTAL - RATE * 4); // the outage really overlapped the publishing
  expect(received.items.map((m) => m.seq)).toEqual([...Array(TOTAL).keys()]);
});
