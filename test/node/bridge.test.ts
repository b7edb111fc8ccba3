/**
 * The bridge between real Redis and a stand-in for the worker: a Node HTTP sink
 * that checks each request's signature, answers as told and records every
 * delivery. Unlike the worker it does not dedupe batch ids, so a batch the bridge
 * sends again after it was accepted shows up instead of being hidden.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import { startBridge, type RunningBridge } from "../../bridge/bridge.ts";
import { configFromEnv } from "../../bridge/config.ts";
import type { Logger } from "../../bridge/log.ts";
import { readSignature, verifySignature } from "../../worker/publish/signature.ts";
import { LARAVEL_MULTI_CHANNEL_SCRIPT } from "../support/laravel.ts";
import { redisAnswers } from "../../scripts/ensure-redis.ts";
import { freePort } from "../support/worker.ts";

const SECRET = "bridge-test-secret";
const SHARED_REDIS = "redis://127.0.0.1:6379";
const ROOT = resolve(import.meta.dirname, "../..");

interface WireMessage {
  channel: string;
  event: string;
  data: unknown;
  socket: string | null;
}

interface SinkRequest {
  path: string;
  contentType: string | undefined;
  signed: boolean;
  id: string;
  body: string;
  messages: WireMessage[];
  status: number;
}

interface Sink {
  url: string;
  requests: SinkRequest[];
  /** Messages of every accepted batch, in arrival order: a batch accepted twice is here twice. */
  delivered: WireMessage[];
  /** How many times each batch id was accepted (answered 200). */
  acceptances: Map<string, number>;
  close(): Promise<void>;
}

const cleanups: (() => Promise<unknown> | void)[] = [];
const sinks: Sink[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  // Every bridge has stopped: whatever it sent is in. Each accepted batch arrived once.
  for (const sink of sinks.splice(0)) {
    const repeated = [...sink.acceptances].filter(([, times]) => times > 1);
    expect(repeated, `batches accepted more than once by ${sink.url}`).toEqual([]);
  }
});

const unique = () => randomUUID().slice(0, 8);

async function until<T>(probe: () => T | Promise<T>, what: string, timeoutMs = 15_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The sink's answer: a status, or 200 refusing some messages one by one as the worker does. */
type Answer = number | { refuse: (message: WireMessage) => boolean };

async function startSink(answer: (request: SinkRequest) => Answer = () => 200, port = 0): Promise<Sink> {
  const requests: SinkRequest[] = [];
  const delivered: WireMessage[] = [];
  const acceptances = new Map<string, number>();
  const server: Server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const signature = readSignature(req.headers["x-echo-timestamp"] as string, req.headers["x-echo-signature"] as string);
    // As the worker does: the signature covers method, path (so the app id) and body.
    const signed = { ok: signature.ok && (await verifySignature(SECRET, signature, { method: req.method ?? "", path: req.url ?? "", body })) };
    const parsed = JSON.parse(body) as { id: string; messages: WireMessage[] };
    const request: SinkRequest = {
      path: req.url ?? "",
      contentType: req.headers["content-type"],
      signed: signed.ok,
      id: parsed.id,
      body,
      messages: parsed.messages,
      status: 0,
    };
    const decision = signed.ok ? answer(request) : 401;
    request.status = typeof decision === "number" ? decision : 200;
    requests.push(request);
    if (request.status !== 200) {
      res.writeHead(request.status, { "content-type": "application/json" }).end('{"error":"no"}');
      return;
    }
    const accepted = parsed.messages.filter((m) => typeof decision === "number" || !decision.refuse(m));
    acceptances.set(parsed.id, (acceptances.get(parsed.id) ?? 0) + 1);
    delivered.push(...accepted);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ accepted: accepted.length, rejected: parsed.messages.length - accepted.length }));
  });
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  const sink: Sink = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    delivered,
    acceptances,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((done) => server.close(() => done()));
    },
  };
  cleanups.push(sink.close);
  sinks.push(sink);
  return sink;
}

function capturingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (message) => lines.push(`info: ${message}`),
    warn: (message) => lines.push(`warn: ${message}`),
    error: (message) => lines.push(`error: ${message}`),
  };
}

async function runBridge(env: Record<string, string>) {
  const log = capturingLogger();
  const config = configFromEnv({
    BRIDGE_SECRET: SECRET,
    REDIS_URL: SHARED_REDIS,
    BRIDGE_PORT: "0",
    BRIDGE_PREFIX_CHECK_SECONDS: "0",
    BRIDGE_BATCH_WINDOW_MS: "5",
    BRIDGE_RETRY_BASE_MS: "20",
    BRIDGE_RETRY_MAX_MS: "100",
    ...env,
  });
  const bridge = await startBridge(config, log);
  cleanups.push(() => bridge.stop());
  await until(() => bridge.stats().redis.state === "subscribed", "the bridge to subscribe");
  return { bridge, log };
}

function redisClient(url = SHARED_REDIS): Redis {
  const client = new Redis(url);
  cleanups.push(() => client.quit().catch(() => client.disconnect()));
  return client;
}

async function publishAll(redis: Redis, messages: [channel: string, payload: string][]): Promise<void> {
  const pipeline = redis.pipeline();
  for (const [channel, payload] of messages) pipeline.publish(channel, payload);
  await pipeline.exec();
}

const event = (name: string, data: unknown) => JSON.stringify({ event: name, data, socket: null });
const byChannel = (messages: WireMessage[], channel: string) => messages.filter((m) => m.channel === channel);

async function startRedisServer(port: number): Promise<ChildProcess & { stop(): Promise<void> }> {
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await once(child, "exit");
  };
  cleanups.push(stop);
  await until(() => redisAnswers("127.0.0.1", port), `redis-server on port ${port}`);
  return Object.assign(child, { stop });
}

describe("what Laravel publishes", () => {
  it("arrives at the worker signed, with the prefix stripped, from PUBLISH and from multi-channel EVAL", async () => {
    const id = unique();
    const sink = await startSink();
    await runBridge({ ECHO_URL: sink.url }); // default prefix laravel_database_
    const redis = redisClient();

    const shipped = { event: "App\\Events\\OrderShipped", data: { order: { id: 7 }, socket: null }, socket: null };
    await redis.publish(`laravel_database_orders.${id}`, JSON.stringify(shipped));
    const typing = { event: "App\\Events\\Typing", data: { user: "Taylor", socket: "1234.5678" }, socket: "1234.5678" };
    await redis.eval(
      LARAVEL_MULTI_CHANNEL_SCRIPT,
      0,
      JSON.stringify(typing),
      `laravel_database_private-chat.${id}`,
      `laravel_database_presence-room.${id}`,
    );
    // The manual test teams use: no socket in the payload.
    await redis.publish(`laravel_database_conversation.${id}`, '{"event":"NewMessageEvent","data":{"message":"test"}}');

    const ours = () => sink.delivered.filter((m) => m.channel.endsWith(id));
    await until(() => ours().length === 4, "four messages");
    expect(ours().sort((a, b) => a.channel.localeCompare(b.channel))).toEqual([
      { channel: `conversation.${id}`, event: "NewMessageEvent", data: { message: "test" }, socket: null },
      { channel: `orders.${id}`, ...shipped },
      { channel: `presence-room.${id}`, ...typing },
      { channel: `private-chat.${id}`, ...typing },
    ]);
    for (const request of sink.requests) {
      expect(request).toMatchObject({ path: "/apps/app/publish", contentType: "application/json", signed: true });
    }
  });

  it("refuses publishes that are not JSON, have no string event or exceed MAX_MESSAGE_BYTES, and counts them", async () => {
    const prefix = `bad_${unique()}_`;
    const sink = await startSink();
    const { bridge, log } = await runBridge({ ECHO_URL: sink.url, REDIS_PREFIX: prefix, MAX_MESSAGE_BYTES: "1000" });
    const redis = redisClient();
    const channel = `${prefix}inbox`;

    await publishAll(redis, [
      [channel, "not json"],
      [channel, "{truncated"],
      [channel, '{"data":{"message":"no event"}}'],
      [channel, '["App\\\\Events\\\\X"]'],
      [channel, '{"event":42}'],
      [channel, '{"event":"X","socket":5}'],
      [channel, event("Big", "x".repeat(1000))],
      // 400 characters, 1200 bytes in UTF-8: the cap is in bytes.
      [channel, event("Euro", "€".repeat(400))],
      [channel, event("Good", { n: 1 })],
    ]);

    // The sink counts a batch when it arrives, the bridge when the answer does.
    await until(() => sink.delivered.length === 1 && bridge.stats().messages.forwarded === 1, "the valid message");
    expect(sink.delivered).toEqual([{ channel: "inbox", event: "Good", data: { n: 1 }, socket: null }]);
    expect(bridge.stats().messages).toMatchObject({
      received: 9,
      forwarded: 1,
      invalid: { notJson: 2, shapeless: 4, tooLarge: 2 },
    });
    // One line per kind, with its count, not one per message.
    expect(log.lines.filter((line) => line.includes("not JSON"))).toEqual([expect.stringContaining("1 such so far")]);
    expect(log.lines.filter((line) => line.includes('string "event"'))).toHaveLength(1);
    expect(log.lines.filter((line) => line.includes("MAX_MESSAGE_BYTES"))).toHaveLength(1);
  });
});

describe("delivery to the worker", () => {
  it("buffers while the worker is unreachable and then delivers everything once, in order per channel", async () => {
    const prefix = `down_${unique()}_`;
    const port = await freePort();
    const { bridge, log } = await runBridge({
      ECHO_URL: `http://127.0.0.1:${port}`,
      REDIS_PREFIX: prefix,
      BRIDGE_CONCURRENCY: "3",
      BRIDGE_BATCH_MAX_MESSAGES: "7",
    });
    const redis = redisClient();
    const channels = ["a", "b", "c", "d", "e"];
    const published: [string, string][] = [];
    for (let n = 0; n < 40; n++) for (const c of channels) published.push([prefix + c, event("Tick", { n })]);
    await publishAll(redis, published);
    await until(() => bridge.stats().messages.received === 200 && bridge.stats().worker.state === "unreachable", "buffering");
    expect(log.lines.some((line) => line.includes(`cannot reach the worker at http://127.0.0.1:${port}`))).toBe(true);

    const sink = await startSink(undefined, port);
    await until(() => sink.delivered.length === 200 && bridge.stats().messages.forwarded === 200, "all 200 messages", 30_000);
    for (const c of channels) {
      expect(byChannel(sink.delivered, c).map((m) => (m.data as { n: number }).n)).toEqual([...Array(40).keys()]);
    }
    expect(bridge.stats().messages).toMatchObject({ forwarded: 200, dropped: { overflow: 0, rejected: 0, shutdown: 0 } });
    expect(bridge.stats().buffer.messages).toBe(0);
    expect(bridge.stats().worker.state).toBe("ok");
  });

  it("retries a batch the worker failed with 500 under the same id and body", async () => {
    const prefix = `retry_${unique()}_`;
    let failures = 3;
    const sink = await startSink(() => (failures-- > 0 ? 500 : 200));
    const { bridge } = await runBridge({ ECHO_URL: sink.url, REDIS_PREFIX: prefix, BRIDGE_CONCURRENCY: "1" });
    const redis = redisClient();
    await publishAll(redis, [...Array(5).keys()].map((n) => [`${prefix}orders`, event("Tick", { n })]));

    await until(() => sink.delivered.length === 5, "five messages");
    expect(sink.delivered.map((m) => (m.data as { n: number }).n)).toEqual([0, 1, 2, 3, 4]);
    const [first, ...retries] = sink.requests.slice(0, 4);
    expect(sink.requests.slice(0, 4).map((r) => r.status)).toEqual([500, 500, 500, 200]);
    for (const retry of retries) expect({ id: retry.id, body: retry.body }).toEqual({ id: first!.id, body: first!.body });
    expect(bridge.stats().requests).toMatchObject({ failed: 3 });
  });

  it("drops what the worker refuses, a malformed batch (400) or single messages, without retrying", async () => {
    const prefix = `refuse_${unique()}_`;
    const sink = await startSink((r) =>
      r.messages.some((m) => m.event === "Malformed") ? 400 : { refuse: (m) => m.event === "Unusable" },
    );
    const { bridge, log } = await runBridge({ ECHO_URL: sink.url, REDIS_PREFIX: prefix, BRIDGE_CONCURRENCY: "1" });
    const redis = redisClient();
    await redis.publish(`${prefix}feed`, event("Malformed", {}));
    await until(() => bridge.stats().messages.dropped.rejected === 1, "the 400");
    await publishAll(redis, [
      [`${prefix}feed`, event("Unusable", {})],
      [`${prefix}feed`, event("Fine", {})],
    ]);
    await until(() => bridge.stats().buffer.messages === 0 && bridge.stats().messages.received === 3, "the rest");

    expect(sink.requests.filter((r) => r.status === 400)).toHaveLength(1);
    expect(sink.delivered.map((m) => m.event)).toEqual(["Fine"]);
    expect(bridge.stats().messages).toMatchObject({ forwarded: 1, dropped: { rejected: 2 } });
    expect(log.lines.filter((line) => line.includes("the worker refused"))).toEqual([
      expect.stringContaining("a whole batch as malformed (400"),
    ]);
  });

  it("splits a batch the worker finds too large (413) and drops a single message it still refuses", async () => {
    const prefix = `split_${unique()}_`;
    const sink = await startSink((r) => (r.messages.length > 2 || r.body.includes("Huge") ? 413 : 200));
    const { bridge, log } = await runBridge({
      ECHO_URL: sink.url,
      REDIS_PREFIX: prefix,
      BRIDGE_CONCURRENCY: "1",
      BRIDGE_BATCH_WINDOW_MS: "200",
    });
    const redis = redisClient();
    const payloads = [...Array(9).keys()].map((n) => event(n === 4 ? "Huge" : "Tick", { n }));
    await publishAll(redis, payloads.map((p) => [`${prefix}orders`, p]));

    await until(() => bridge.stats().buffer.messages === 0 && bridge.stats().messages.received === 9, "the buffer to empty");
    expect(sink.delivered.map((m) => (m.data as { n: number }).n)).toEqual([0, 1, 2, 3, 5, 6, 7, 8]);
    expect(bridge.stats().messages.dropped.tooLargeForWorker).toBe(1);
    expect(log.lines.some((line) => line.includes("too large (413)") && line.includes("BRIDGE_BATCH_MAX_BYTES"))).toBe(true);
  });

  it.each([
    [401, "BRIDGE_SECRET must equal the worker's BRIDGE_SECRET"],
    [404, 'APP_ID "app" must be an appId'],
  ])("on %i says what to fix, keeps the messages and retries only slowly", async (status, hint) => {
    const prefix = `conf_${unique()}_`;
    const sink = await startSink(() => status);
    const { bridge, log } = await runBridge({
      ECHO_URL: sink.url,
      REDIS_PREFIX: prefix,
      BRIDGE_CONCURRENCY: "4",
      BRIDGE_SHUTDOWN_TIMEOUT_MS: "100",
    });
    const redis = redisClient();
    await publishAll(redis, [...Array(8).keys()].map((n) => [`${prefix}channel-${n}`, event("Tick", { n })]));

    await until(() => log.lines.some((line) => line.includes(hint)), "the hint in the log");
    await new Promise((r) => setTimeout(r, 2000));
    // Every lane tried once and now waits the 30 s misconfiguration period.
    expect(sink.requests.length).toBeLessThanOrEqual(4);
    expect(log.lines.filter((line) => line.includes(hint))).toHaveLength(1);
    expect(bridge.stats()).toMatchObject({ worker: { state: "misconfigured" }, buffer: { messages: 8 } });
    const health = await fetch(bridge.healthUrl + "/health");
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: "degraded", lastError: { message: expect.stringContaining(hint) } });

    await bridge.stop();
    expect(bridge.stats().messages.dropped.shutdown).toBe(8);
    expect(log.lines.some((line) => line.includes("shutdown: dropped 8 messages"))).toBe(true);
  });

  it("drops the oldest waiting messages beyond the buffer bound and counts them", async () => {
    const prefix = `bound_${unique()}_`;
    const port = await freePort();
    const { bridge, log } = await runBridge({
      ECHO_URL: `http://127.0.0.1:${port}`,
      REDIS_PREFIX: prefix,
      BRIDGE_CONCURRENCY: "1",
      BRIDGE_BUFFER_MAX_MESSAGES: "10",
    });
    const redis = redisClient();
    await redis.publish(`${prefix}feed`, event("Tick", { n: 0 }));
    // Message 0 is now in a batch being retried; batches in flight are never cut.
    await until(() => bridge.stats().worker.state === "unreachable", "the first failed attempt");
    await publishAll(redis, [...Array(30).keys()].map((n) => [`${prefix}feed`, event("Tick", { n: n + 1 })]));
    await until(() => bridge.stats().messages.received === 31, "all publishes");
    expect(bridge.stats().messages.dropped.overflow).toBe(21);
    expect(bridge.stats().buffer.messages).toBe(10);
    expect(log.lines.filter((line) => line.includes("buffer full"))).toHaveLength(1);

    const sink = await startSink(undefined, port);
    await until(() => bridge.stats().buffer.messages === 0, "the buffer to empty", 30_000);
    expect(sink.delivered.map((m) => (m.data as { n: number }).n)).toEqual([0, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(log.lines.some((line) => line.includes("buffer half empty again; 21 oldest messages were dropped"))).toBe(true);
  });

  it("delivers what it buffered when stopped", async () => {
    const prefix = `stop_${unique()}_`;
    const sink = await startSink();
    // A window far longer than the test: only the stop can send these.
    const { bridge } = await runBridge({ ECHO_URL: sink.url, REDIS_PREFIX: prefix, BRIDGE_BATCH_WINDOW_MS: "600000" });
    const redis = redisClient();
    await publishAll(redis, [...Array(20).keys()].map((n) => [`${prefix}feed`, event("Tick", { n })]));
    await until(() => bridge.stats().messages.received === 20, "all publishes");
    expect(sink.delivered).toHaveLength(0);

    await bridge.stop();
    expect(sink.delivered.map((m) => (m.data as { n: number }).n)).toEqual([...Array(20).keys()]);
    expect(bridge.stats().messages).toMatchObject({ forwarded: 20, dropped: { shutdown: 0 } });
  });
});

describe("the bridge process", () => {
  it("prints its config with secrets masked, and on SIGTERM flushes and exits 0", async () => {
    const prefix = `proc_${unique()}_`;
    const sink = await startSink();
    const healthPort = await freePort();
    const child = spawn(resolve(ROOT, "node_modules/.bin/node"), ["bridge/main.ts"], {
      cwd: ROOT,
      env: {
        ...process.env,
        BRIDGE_SECRET: SECRET,
        REDIS_URL: "redis://:not-a-real-password@127.0.0.1:6379",
        REDIS_PREFIX: prefix,
        ECHO_URL: sink.url,
        BRIDGE_PORT: String(healthPort),
        BRIDGE_BATCH_WINDOW_MS: "600000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    cleanups.push(() => void child.kill("SIGKILL"));
    const health = async () => {
      try {
        return (await (await fetch(`http://127.0.0.1:${healthPort}/health`)).json()) as {
          redis: { state: string };
          messages: { received: number };
        };
      } catch {
        return undefined;
      }
    };
    // Redis without a password configured answers AUTH with an error; the bridge goes on.
    await until(async () => (await health())?.redis.state === "subscribed", `a subscribed bridge:\n${output}`);
    const redis = redisClient();
    await publishAll(redis, [...Array(5).keys()].map((n) => [`${prefix}feed`, event("Tick", { n })]));
    await until(async () => (await health())?.messages.received === 5, "the bridge to receive five messages");

    const exited = once(child, "exit");
    child.kill("SIGTERM");
    expect(await exited).toEqual([0, null]);
    expect(sink.delivered.map((m) => (m.data as { n: number }).n)).toEqual([0, 1, 2, 3, 4]);
    expect(output).toContain("secret *** (");
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain("not-a-real-password");
  });
});

describe("health and metrics", () => {
  it("reports state and counts as JSON and in Prometheus text format", async () => {
    const prefix = `health_${unique()}_`;
    const sink = await startSink();
    const { bridge } = await runBridge({ ECHO_URL: sink.url, REDIS_PREFIX: prefix });
    const redis = redisClient();
    await publishAll(redis, [
      [`${prefix}feed`, event("Tick", {})],
      [`${prefix}feed`, "oops"],
    ]);
    await until(() => sink.delivered.length === 1 && bridge.stats().messages.forwarded === 1, "one message");

    const health = await fetch(bridge.healthUrl + "/health");
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: "ok",
      redis: { state: "subscribed", pattern: `${prefix}*` },
      worker: { state: "ok", url: `${sink.url}/apps/app/publish` },
      messages: { received: 2, forwarded: 1, invalid: { notJson: 1 } },
      buffer: { messages: 0 },
    });
    const metrics = await (await fetch(bridge.healthUrl + "/metrics")).text();
    expect(metrics).toContain("# TYPE echo_bridge_messages_received_total counter\necho_bridge_messages_received_total 2\n");
    expect(metrics).toContain("echo_bridge_messages_forwarded_total 1\n");
    expect(metrics).toContain('echo_bridge_messages_invalid_total{reason="not_json"} 1\n');
    expect(metrics).toContain('echo_bridge_messages_dropped_total{reason="overflow"} 0\n');
    expect(metrics).toContain("echo_bridge_buffer_messages 0\n");
    expect(metrics).toContain("echo_bridge_redis_subscribed 1\n");
    expect(metrics).toContain('echo_bridge_worker_state{state="ok"} 1\n');
  });
});

describe("Redis outages and mistakes (own redis-server)", () => {
  it("resubscribes after Redis restarts and forwards later publishes", async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    let server = await startRedisServer(port);
    const sink = await startSink();
    const { bridge, log } = await runBridge({ ECHO_URL: sink.url, REDIS_URL: url });
    const before = new Redis(url);
    await before.publish("laravel_database_orders", event("Before", {}));
    before.disconnect();
    await until(() => sink.delivered.length === 1, "the first message");

    await server.stop();
    await until(() => bridge.stats().redis.state === "disconnected", "the bridge to notice");
    server = await startRedisServer(port);
    await until(() => bridge.stats().redis.state === "subscribed", "the bridge to resubscribe", 30_000);
    const after = redisClient(url);
    await after.publish("laravel_database_orders", event("After", {}));

    await until(() => sink.delivered.length === 2, "the second message");
    expect(sink.delivered.map((m) => m.event)).toEqual(["Before", "After"]);
    expect(bridge.stats().redis.reconnects).toBe(1);
    expect(log.lines.some((line) => line.includes("lost the Redis connection"))).toBe(true);
    expect(log.lines.some((line) => line.includes("resubscribed to laravel_database_* on"))).toBe(true);
  });

  it("warns when nothing matches the prefix while Redis carries other channels", async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    await startRedisServer(port);
    const sink = await startSink();
    const { log } = await runBridge({ ECHO_URL: sink.url, REDIS_URL: url, BRIDGE_PREFIX_CHECK_SECONDS: "1" });
    // A Laravel 13 app: its default prefix uses dashes.
    const laravel = redisClient(url);
    const publishing = setInterval(() => {
      for (const name of ["orders", "chat", "feed", "news", "alerts"]) void laravel.publish(`laravel-database-${name}`, event("X", {}));
    }, 50);
    cleanups.push(() => clearInterval(publishing));

    const warning = await until(() => log.lines.find((line) => line.includes("no publish matched")), "the warning");
    expect(warning).toContain('"laravel-database-orders"');
    expect(warning).toContain("perhaps REDIS_PREFIX=laravel-database-");
    expect(sink.requests).toHaveLength(0);
  });
});
