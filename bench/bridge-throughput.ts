/**
 * Throughput of the bridge alone: Redis -> bridge (its own process, as in
 * production) -> a sink standing in for the worker, which checks that every
 * message arrives once and in order per channel.
 *
 *   node bench/bridge-throughput.ts [--messages 500000] [--channels 100] [--padding 100] [--cpu-prof]
 *
 * Two phases of `--messages` each, after a warm-up:
 *  - live: publish as fast as Redis accepts while the bridge forwards; on a small
 *    machine the publisher, not the bridge, sets this pace;
 *  - drain: the bridge is paused (SIGSTOP) while everything is published, so Redis
 *    holds the backlog, then resumed: the rate it empties the backlog at is the
 *    bridge's own. This needs a Redis without the pub/sub output buffer limit, so
 *    the bench runs its own redis-server.
 * BRIDGE_* variables in the environment reach the bridge (batch sizes, concurrency).
 * `--cpu-prof` writes the bridge's V8 profile to bench/.work/profiles/.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import type { BridgeStats } from "../bridge/bridge.ts";
import { redisAnswers } from "../scripts/ensure-redis.ts";
import { freePort } from "../test/support/worker.ts";
import { CpuWindow } from "./metrics.ts";
import { benchPayload, RedisPublisher, REDIS_PREFIX, type OutgoingMessage } from "./publisher.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values: options } = parseArgs({
  options: {
    messages: { type: "string", default: "500000" },
    channels: { type: "string", default: "100" },
    padding: { type: "string", default: "100" },
    "cpu-prof": { type: "boolean", default: false },
  },
});
const MESSAGES = Number(options.messages);
const CHANNELS = Number(options.channels);
const PADDING = "x".repeat(Number(options.padding));
const WARMUP_MESSAGES = 20_000;
const PIPELINE = 1000;
const PIPELINES_IN_FLIGHT = 4;

/** Counters shared with the sink thread. */
const DELIVERED = 0;
const REQUESTS = 1;
const OUT_OF_ORDER = 2;

/**
 * The sink runs on its own thread so that the publisher, busy on the main one, does
 * not delay its answers (each lane waits for an answer before its next batch).
 */
async function runSink(counters: Int32Array): Promise<void> {
  const lastSeq = new Map<string, number>();
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    const { messages } = JSON.parse(body) as { messages: { channel: string; data: { seq: number } }[] };
    for (const { channel, data } of messages) {
      if ((lastSeq.get(channel) ?? -1) >= data.seq) Atomics.add(counters, OUT_OF_ORDER, 1);
      lastSeq.set(channel, data.seq);
    }
    Atomics.add(counters, REQUESTS, 1);
    Atomics.add(counters, DELIVERED, messages.length);
    res.writeHead(200, { "content-type": "application/json" }).end(`{"accepted":${messages.length}}`);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  parentPort!.postMessage((server.address() as AddressInfo).port);
}

async function publishBurst(publisher: RedisPublisher, firstSeq: number, count: number): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for (let start = 0; start < count; start += PIPELINE) {
    const chunk: OutgoingMessage[] = [];
    for (let seq = firstSeq + start; seq < firstSeq + Math.min(start + PIPELINE, count); seq++) {
      chunk.push({ channel: `bench.${seq % CHANNELS}`, payload: benchPayload(seq, 0, PADDING) });
    }
    const sent: Promise<void> = publisher.publish(chunk).then(() => void inFlight.delete(sent));
    inFlight.add(sent);
    if (inFlight.size >= PIPELINES_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

async function startRedis(port: number): Promise<ChildProcess> {
  const redis = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--client-output-buffer-limit", "pubsub 0 0 0"],
    { stdio: "ignore" },
  );
  while (!(await redisAnswers("127.0.0.1", port))) await sleep(50);
  return redis;
}

interface PhaseResult {
  name: string;
  seconds: number;
  bridgeCpuSeconds: number;
  requests: number;
  delivered: number;
}

async function main(): Promise<void> {
  const counters = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const delivered = () => Atomics.load(counters, DELIVERED);
  const requests = () => Atomics.load(counters, REQUESTS);
  const sinkThread = new Worker(new URL(import.meta.url), { workerData: counters });
  const [sinkPort] = (await once(sinkThread, "message")) as [number];
  const redisPort = await freePort();
  const redis = await startRedis(redisPort);

  const healthPort = await freePort();
  const nodeFlags = options["cpu-prof"] ? ["--cpu-prof", "--cpu-prof-dir", resolve(ROOT, "bench/.work/profiles")] : [];
  const bridge = spawn(process.execPath, [...nodeFlags, "bridge/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      BRIDGE_SECRET: "bench-secret",
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      REDIS_PREFIX,
      ECHO_URL: `http://127.0.0.1:${sinkPort}`,
      BRIDGE_PORT: String(healthPort),
      BRIDGE_PREFIX_CHECK_SECONDS: "0",
      // The drain phase holds a whole phase at once: what is measured is throughput, not the drop policy.
      BRIDGE_BUFFER_MAX_MESSAGES: process.env.BRIDGE_BUFFER_MAX_MESSAGES ?? String(2 * MESSAGES),
      BRIDGE_BUFFER_MAX_BYTES: process.env.BRIDGE_BUFFER_MAX_BYTES ?? String(2 ** 30),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const health = async () => (await fetch(`http://127.0.0.1:${healthPort}/health`)).json() as Promise<BridgeStats>;
  for (let subscribed = false; !subscribed; await sleep(50)) {
    subscribed = await health().then((h) => h.redis.state === "subscribed", () => false);
  }
  const publisher = new RedisPublisher("127.0.0.1", redisPort);
  await publisher.connect();

  let nextSeq = 0;
  const publish = async (count: number) => {
    await publishBurst(publisher, nextSeq, count);
    nextSeq += count;
  };
  /** Until every message is at the sink or, if the bridge dropped some, it holds none. */
  const settled = async () => {
    for (let checked = 0; delivered() < nextSeq; await sleep(2)) {
      if (performance.now() - checked < 100) continue;
      checked = performance.now();
      const { messages, buffer } = await health();
      if (messages.received === nextSeq && buffer.messages === 0) return;
    }
  };
  const measure = async (name: string, phase: () => Promise<number>): Promise<PhaseResult> => {
    const cpu = new CpuWindow([{ name: "bridge", pids: [bridge.pid!] }]).start();
    const before = { requests: requests(), delivered: delivered() };
    const started = await phase();
    await settled();
    const seconds = (performance.now() - started) / 1000;
    return {
      name,
      seconds,
      bridgeCpuSeconds: cpu.stop()[0]!.cpuSeconds,
      requests: requests() - before.requests,
      delivered: delivered() - before.delivered,
    };
  };

  await publish(WARMUP_MESSAGES);
  await settled();
  let publishSeconds = 0;
  const live = await measure("live", async () => {
    const started = performance.now();
    await publish(MESSAGES);
    publishSeconds = (performance.now() - started) / 1000;
    return started;
  });
  const drain = await measure("drain", async () => {
    bridge.kill("SIGSTOP");
    await publish(MESSAGES);
    bridge.kill("SIGCONT");
    return performance.now();
  });
  const final = await health();

  await publisher.close();
  bridge.kill("SIGTERM");
  await once(bridge, "exit");
  redis.kill("SIGKILL");
  await sinkThread.terminate();

  const missing = nextSeq - delivered();
  const outOfOrder = Atomics.load(counters, OUT_OF_ORDER);
  const lines = [
    `${MESSAGES} messages per phase on ${CHANNELS} channels, payload ${benchPayload(0, 0, PADDING).length} bytes; ` +
      `publisher: ${Math.round(MESSAGES / publishSeconds)} msgs/s into Redis`,
    ...[live, drain].map(
      (phase) =>
        `${phase.name}: ${Math.round(phase.delivered / phase.seconds)} msgs/s through the bridge ` +
        `(${phase.seconds.toFixed(2)} s; bridge CPU ${((phase.bridgeCpuSeconds * 1e6) / MESSAGES).toFixed(1)} µs/message; ` +
        `${Math.round(phase.delivered / phase.requests)} messages per request)`,
    ),
    `missing ${missing}, out of order ${outOfOrder}, dropped ${JSON.stringify(final.messages.dropped)}, ` +
      `redis reconnects ${final.redis.reconnects}`,
  ];
  console.log(lines.join("\n"));
  process.exitCode = missing === 0 && outOfOrder === 0 ? 0 : 1;
}

if (isMainThread) await main();
else await runSink(workerData as Int32Array);
