/**
 * Runs echo-edge as the bench measures it: the worker under `wrangler dev`
 * (workerd) and the bridge in its own Node process, fed from the bench's Redis.
 *
 * `wrangler dev` puts an entry proxy (a second workerd) in front of the worker.
 * Production has no such hop and it costs ~15% (DESIGN.md), so by default clients
 * and bridge talk to the worker's own socket; `entry: "proxy"` goes through the
 * proxy instead (whose own descriptors then run out before 10,000 connections).
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort, startWorker } from "../test/support/worker.ts";
import type { RunningServer } from "./load.ts";
import { descendantsOf, type ProcessInfo } from "./metrics.ts";
import { IsolateProfiler } from "./profiler.ts";
import { REDIS_PREFIX } from "./publisher.ts";
import type { BenchRedis } from "./redis.ts";

const ROOT = resolve(import.meta.dirname, "..");
const APP = { appId: "bench", key: "bench-key" };
const BRIDGE_SECRET = "bench-bridge-secret";

export type EdgeEntry = "direct" | "proxy";

/** TCP ports a process listens on, from /proc/net/tcp and its socket descriptors. */
function listeningPorts(pid: number): number[] {
  const portOfInode = new Map<string, number>();
  for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[3] === "0A") portOfInode.set(fields[9]!, parseInt(fields[1]!.split(":")[1]!, 16));
  }
  const ports: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      const port = inode && portOfInode.get(inode);
      if (port) ports.push(port);
    } catch {
      // closed meanwhile
    }
  }
  return ports;
}

/** The worker's own port: the one of the runtime's sockets that answers `GET /` with the router's "OK". */
async function workerPort(runtime: ProcessInfo): Promise<number> {
  for (const port of listeningPorts(runtime.pid)) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200 && (await response.text()) === "OK") return port;
    } catch {
      // not an HTTP socket
    }
  }
  throw new Error(`no socket of workerd ${runtime.pid} answers GET / with OK`);
}

/** The bundle wrangler dev built and runs, in `.wrangler/tmp/dev-*` of its working directory. */
function devBundle(wranglerPid: number): string {
  const tmp = join(readlinkSync(`/proc/${wranglerPid}/cwd`), ".wrangler/tmp");
  const build = readdirSync(tmp).find((entry) => entry.startsWith("dev-"));
  if (!build) throw new Error(`no dev build in ${tmp}`);
  return join(tmp, build, "index.js");
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

export async function startEchoEdge(redis: BenchRedis, authHost: string, entry: EdgeEntry, profile: boolean): Promise<RunningServer> {
  const worker = await startWorker({ CLIENTS: JSON.stringify([APP]), BRIDGE_SECRET, AUTH_HOST: authHost });
  try {
    const wrangler = descendantsOf(process.pid).find((p) => p.command.includes("wrangler-dist/cli.js") && p.command.includes(`--port ${worker.port}`));
    if (!wrangler) throw new Error("cannot find the wrangler dev process");
    const workerds = descendantsOf(wrangler.pid).filter((p) => /\/workerd serve /.test(p.command));
    const proxy = workerds.find((p) => p.command.includes(`--socket-addr=entry=127.0.0.1:${worker.port} `));
    const runtime = workerds.find((p) => p !== proxy);
    if (!proxy || !runtime) throw new Error(`expected wrangler's entry proxy and the worker runtime, found: ${workerds.map((p) => p.pid)}`);
    const url = entry === "direct" ? `http://127.0.0.1:${await workerPort(runtime)}` : worker.url;
    const inspectorPort = /--inspector-port (\d+)/.exec(wrangler.command)?.[1];
    const profiler = profile && inspectorPort ? new IsolateProfiler(`ws://127.0.0.1:${inspectorPort}/ws`, devBundle(wrangler.pid)) : undefined;
    const bridge = await startBridge(redis, url);
    const processes = [
      { name: "workerd (worker + Durable Objects)", pids: [runtime.pid] },
      ...(entry === "proxy" ? [{ name: "wrangler entry proxy (dev only)", pids: [proxy.pid] }] : []),
      { name: "bridge", pids: [bridge.pid] },
    ];
    return {
      name: "echo-edge",
      description:
        `echo-edge: worker under wrangler dev (workerd), bridge in Node ${process.version}; ` +
        (entry === "direct" ? "clients and bridge connect to the worker's own socket, bypassing wrangler's entry proxy" : "clients and bridge go through wrangler's entry proxy"),
      url,
      speaksEio4: true,
      processes,
      profiler,
      counters: bridge.counters,
      capacity: connectionCapacity(runtime.pid),
      output: () => `${worker.output()}\n--- bridge ---\n${bridge.output()}`,
      async stop() {
        await bridge.stop();
        await worker.stop();
      },
    };
  } catch (error) {
    await worker.stop();
    throw error;
  }
}
