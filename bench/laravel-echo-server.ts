/**
 * Runs the reference: laravel-echo-server 1.6.3 from npm, configured as a Laravel
 * app would (Redis database, `laravel_database_` prefix, devMode off), in its own
 * Node process so its CPU and memory can be read apart from the generator's.
 */
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../test/support/worker.ts";
import type { BenchRedis } from "./redis.ts";
import type { RunningServer } from "./load.ts";
import { REDIS_PREFIX } from "./publisher.ts";

const BENCH_DIR = import.meta.dirname;
const WORK_DIR = join(BENCH_DIR, ".work");

export async function startLaravelEchoServer(redis: BenchRedis, authHost: string): Promise<RunningServer> {
  mkdirSync(WORK_DIR, { recursive: true });
  const port = await freePort();
  const config = {
    authHost,
    authEndpoint: "/broadcasting/auth",
    clients: [],
    database: "redis",
    databaseConfig: { redis: { host: redis.host, port: redis.port, keyPrefix: REDIS_PREFIX } },
    devMode: false,
    host: "127.0.0.1",
    port,
    protocol: "http",
    socketio: {},
    subscribers: { http: true, redis: true },
    apiOriginAllow: { allowCors: false },
  };
  writeFileSync(join(WORK_DIR, "laravel-echo-server.json"), JSON.stringify(config, null, 2));
  const child = spawn(
    process.execPath,
    [join(BENCH_DIR, "node_modules/laravel-echo-server/bin/server.js"), "start", "--dir", WORK_DIR],
    { cwd: WORK_DIR, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  // "Server ready!" is printed once the Redis PSUBSCRIBE has been acknowledged.
  const deadline = Date.now() + 20_000;
  while (!output.includes("Server ready")) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`laravel-echo-server did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name: "laravel-echo-server",
    description: `laravel-echo-server 1.6.3 (one Node ${process.version} process)`,
    url: `http://127.0.0.1:${port}`,
    speaksEio4: false,
    processes: [{ name: "laravel-echo-server", pids: [child.pid!] }],
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
