/**
 * Runs the chosen scenarios against each server in turn, one fresh server per
 * load so no state or memory carries over, and writes the report.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startLaravelAuth } from "../test/fixtures/laravel-auth.ts";
import { startEchoEdge } from "./echo-edge.ts";
import { startLaravelEchoServer } from "./laravel-echo-server.ts";
import { runLoad, type RunningServer } from "./load.ts";
import { machineBusySeconds } from "./metrics.ts";
import { RedisPublisher } from "./publisher.ts";
import { startBenchRedis, type BenchRedis } from "./redis.ts";
import { describeMachine, writeReport, type BenchReport, type BridgeResult, type Failed, type ScenarioOutcome } from "./report.ts";
import { loadScenarios, type BenchOptions, type TargetName } from "./scenarios.ts";

const SERVER_OUTPUT_LINES = 40;
const BACKGROUND_SAMPLE_MS = 2000;
/** Above this much other work (percent of one core) a run on 2 cores is not worth much. */
const NOISY_PERCENT = 25;

function tail(text: string, lines: number): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

function log(line: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

function startTarget(target: TargetName, options: BenchOptions, redis: BenchRedis, authHost: string): Promise<RunningServer> {
  return target === "laravel-echo-server" ? startLaravelEchoServer(redis, authHost) : startEchoEdge(redis, authHost, options.profile, options.tiers);
}

/**
 * Scenario 5 is bench/bridge-throughput.ts (its author's), run as it is run by
 * hand; its summary lines are read back. It prints `<phase>: <n> msgs/s through the bridge`.
 */
async function runBridgeAlone(): Promise<BridgeResult | Failed> {
  const child = spawn(process.execPath, [join(import.meta.dirname, "bridge-throughput.ts")], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = (await once(child, "exit")) as [number | null];
  const rates = Object.fromEntries([...stdout.matchAll(/^(\w+): (\d+) msgs\/s through the bridge/gm)].map((m) => [m[1]!, Number(m[2])]));
  if (code !== 0 || rates.drain === undefined) return { error: `bridge-throughput.ts exited ${code}:\n${stdout}${stderr}` };
  // Its bridge's own log lines (timestamped) are not part of the summary.
  const summary = stdout.trim().split("\n").filter((line) => !/^\d{4}-\d\d-\d\dT/.test(line));
  return { messagesPerSecond: rates.drain, phases: rates, summary };
}

/** CPU the machine spends on other work while the bench is idle, in percent of one core. */
async function backgroundCpuPercent(): Promise<number> {
  const before = machineBusySeconds();
  await sleep(BACKGROUND_SAMPLE_MS);
  return (100 * (machineBusySeconds() - before)) / (BACKGROUND_SAMPLE_MS / 1000);
}

export async function runBench(options: BenchOptions, command: string): Promise<void> {
  const started = Date.now();
  const background = await backgroundCpuPercent();
  log(`other work on this machine before starting: ${Math.round(background)}% of one core${background > NOISY_PERCENT ? " (results will be skewed)" : ""}`);
  const redis = await startBenchRedis(log);
  const auth = await startLaravelAuth();
  const publisher = new RedisPublisher(redis.host, redis.port);
  await publisher.connect();
  const report: BenchReport = {
    date: new Date().toISOString(),
    command,
    machine: describeMachine(),
    backgroundCpuPercent: background,
    options,
    servers: {},
    scenarios: [],
  };
  try {
    for (const scenario of loadScenarios(options)) {
      const outcome: ScenarioOutcome = { name: scenario.name, title: scenario.title, results: {} };
      report.scenarios.push(outcome);
      for (const target of options.targets) {
        log(`${scenario.name} (${scenario.title}): ${target}`);
        let server: RunningServer | undefined;
        let healthy = false;
        try {
          server = await startTarget(target, options, redis, auth.url);
          report.servers[target] = server.description;
          const result = await runLoad({ server, spec: scenario.spec, publisher, redisPid: redis.pid, label: `${target}-${scenario.name}`, log });
          outcome.results[target] = result;
          healthy = result.lost === 0 && result.unexpectedCloses === 0 && result.clients.failures.length === 0;
          log(
            `  delivered ${result.unique}/${result.expected}, ${Math.round(result.deliveriesPerSecond)}/s, ` +
              `p50 ${result.latencyMs.p50.toFixed(1)} ms, p99 ${result.latencyMs.p99.toFixed(1)} ms, ` +
              `generator CPU ${Math.round(result.generator.cpuPercent)}%`,
          );
        } catch (error) {
          outcome.results[target] = { error: String((error as Error).stack ?? error) };
          log(`  failed: ${(error as Error).message}`);
        } finally {
          // What the server printed explains a failure or a loss better than the numbers do.
          if (server && !healthy) outcome.serverOutputTail = { ...outcome.serverOutputTail, [target]: tail(server.output(), SERVER_OUTPUT_LINES) };
          await server?.stop();
        }
      }
    }
    if (options.scenarios.includes("bridge")) {
      log("bridge (the bridge alone into a sink: bench/bridge-throughput.ts)");
      report.bridge = await runBridgeAlone();
      log(`  ${"error" in report.bridge ? `failed: ${report.bridge.error}` : report.bridge.summary.join("\n  ")}`);
    }
  } finally {
    await publisher.close();
    await auth.close();
    await redis.stop();
  }
  report.elapsedSeconds = (Date.now() - started) / 1000;
  const written = writeReport(report);
  log(`results: ${written.join(", ")} (${Math.round(report.elapsedSeconds)} s in all)`);
}
