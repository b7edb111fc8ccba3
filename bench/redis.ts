/**
 * A Redis of the benchmark's own, on a free port: hundreds of thousands of bench
 * publishes must not reach whatever else subscribes to the shared Redis on 6379
 * (a developer's bridge or echo server would relay them and skew both sides).
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { ensureRedis, REDIS_HOST, redisAnswers } from "../scripts/ensure-redis.ts";
import { freePort } from "../test/support/worker.ts";

export interface BenchRedis {
  host: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startBenchRedis(log: (line: string) => void): Promise<BenchRedis> {
  // Installs redis-server on a machine that has none (and starts the shared one).
  await ensureRedis(log);
  const port = await freePort();
  const child = spawn("redis-server", ["--bind", REDIS_HOST, "--port", String(port), "--save", "", "--appendonly", "no"], {
    stdio: "ignore",
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  for (let attempt = 0; !(await redisAnswers(REDIS_HOST, port)); attempt++) {
    if (attempt === 50 || child.exitCode !== null) throw new Error(`redis-server on port ${port} did not answer`);
    await sleep(100);
  }
  return {
    host: REDIS_HOST,
    port,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill("SIGTERM");
      await exited;
    },
  };
}
