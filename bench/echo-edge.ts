/**
 * Runs echo-edge as the bench measures it: the worker on workerd exactly as
 * `npm start` serves it (scripts/local-edge.ts: no proxy in front) and the bridge
 * in its own Node process, fed from the bench's Redis.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startLocalEdge } from "../scripts/local-edge.ts";
import { freePort } from "../test/support/worker.ts";
import type { RunningServer } from "./load.ts";
import { descendantsOf } from "./metrics.ts";
import { IsolateProfiler } from "./profiler.ts";
import { REDIS_PREFIX } from "./publisher.ts";
import type { BenchRedis } from "./redis.ts";

const ROOT = resolve(import.meta.dirname, "..");
const APP = { appId: "bench", key: "bench-key" };
const BRIDGE_SECRET = "bench-bridge-secret";

/** Whether a process listens on a TCP port, from /proc/net/tcp and its socket descriptors. */
function listensOn(pid: number, port: number): boolean {
  const inodes = new Set<string>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[3] === "0A" && parseInt(fields[1]!.split(":")[1]!, 16) === port) inodes.add(fields[9]!);
  }
  return readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return inodes.has(/^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1] ?? "");
    } catch {
      return false; // closed meanwhile
    }
  });
}

/**
 * workerd holds two descriptors per accepted connection (measured: 4,013 for 2,000
 * WebSockets), and reaching its open-files limit crashes the runtime, so a load
 * must stay below this. Its hard limit cannot be raised without CAP_SYS_RESOURCE.
 */
const DESCRIPTORS_PER_CONNECTION = 2;
const DESCRIPTOR_HEADROOM = 200;

function connectionCapacity(pid: number): { connections: number; reason: string } {
  const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))?.[1]);
  const inUse = readdirSync(`/proc/${pid}/fd`).length;
  return {
    connections: Math.floor((limit - inUse - DESCRIPTOR_HEADROOM) / DESCRIPTORS_PER_CONNECTION),
    reason: `workerd's open-files limit (${limit}) at ${DESCRIPTORS_PER_CONNECTION} descriptors per connection`,
  };
}

async function startBridge(redis: BenchRedis, echoUrl: string) {
  const healthPort = await freePort();
  const child = spawn(process.execPath, [join(ROOT, "bridge/main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      // A URL, because it takes precedence over everything else the environment may hold.
      REDIS_URL: `redis://${redis.host}:${redis.port}`,
      REDIS_PREFIX,
      ECHO_URL: echoUrl,
      BRIDGE_SECRET,
      APP_ID: APP.appId,
      BRIDGE_PORT: String(healthPort),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise((r) => child.once("exit", r));
  for (let attempt = 0; ; attempt++) {
    try {
      const response = await fetch(`http://127.0.0.1:${healthPort}/health`);
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (attempt === 100 || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`the bridge did not become healthy:\n${output}`);
    }
    await sleep(100);
  }
  return {
    pid: child.pid!,
    output: () => output,
    /** Its Prometheus counters (`name{labels}` to value). */
    async counters(): Promise<Record<string, number>> {
      const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
      const counters: Record<string, number> = {};
      for (const match of text.matchAll(/^(echo_bridge_\w+_total(?:\{[^}]*\})?) (\d+)$/gm)) counters[match[1]!] = Number(match[2]);
      return counters;
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export async function startEchoEdge(redis: BenchRedis, authHost: string, profile: boolean, tiers: 1 | 2): Promise<RunningServer> {
  let output = "";
  const inspectorPort = profile ? await freePort() : undefined;
  const edge = await startLocalEdge({
    vars: { CLIENTS: JSON.stringify([APP]), BRIDGE_SECRET, AUTH_HOST: authHost },
    onLog: (line) => (output += line + "\n"),
    inspectorPort,
    tiers,
  });
  try {
    const runtimes = descendantsOf(process.pid).filter((p) => /\/workerd serve /.test(p.command));
    const front = runtimes.find((p) => listensOn(p.pid, edge.port));
    const objects = runtimes.filter((p) => p !== front);
    if (!front || objects.length !== tiers - 1) throw new Error(`expected ${tiers} workerd tiers, found workerd ${runtimes.map((p) => p.pid)}`);
    const profiler = inspectorPort ? new IsolateProfiler(`ws://127.0.0.1:${inspectorPort}/core:user:echo-edge`, edge.bundlePath) : undefined;
    const bridge = await startBridge(redis, edge.url);
    return {
      name: "echo-edge",
      description:
        `echo-edge: worker on workerd as npm start serves it (miniflare, no proxy), ` +
        (tiers === 2 ? "Worker tier and Durable Object tier in two workerd processes" : "one workerd process") +
        `; bridge in Node ${process.version}`,
      url: edge.url,
      speaksEio4: true,
      processes: [
        { name: tiers === 2 ? "workerd Worker tier" : "workerd", pids: [front.pid] },
        ...objects.map((p) => ({ name: "workerd Durable Object tier", pids: [p.pid] })),
        { name: "bridge", pids: [bridge.pid] },
      ],
      profiler,
      counters: bridge.counters,
      capacity: connectionCapacity(front.pid),
      output: () => `${output}\n--- bridge ---\n${bridge.output()}`,
      async stop() {
        await bridge.stop();
        await edge.stop();
      },
    };
  } catch (error) {
    await edge.stop();
    throw error;
  }
}
