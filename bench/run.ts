/**
 * `npm run bench [-- flags]`: laravel-echo-server and echo-edge under the same
 * loads, in one run. Installs the bench's own dependencies (bench/package.json)
 * first when they are missing, so only Node built-ins are imported statically.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { DEFAULT_OPTIONS, SCENARIOS, TARGETS, type BenchOptions, type ScenarioName, type TargetName } from "./scenarios.ts";

const BENCH_DIR = import.meta.dirname;

const USAGE = `usage: npm run bench -- [flags]
  --scenario LIST     ${SCENARIOS.join(",")} (default: all)
  --target LIST       ${TARGETS.join(",")} (default: both)
  --clients N         clients of the steady and saturation loads (${DEFAULT_OPTIONS.clients})
  --rate N            msg/s of the steady load, 0 = as fast as delivered (${DEFAULT_OPTIONS.rate})
  --duration S        seconds of publishing per measured load (${DEFAULT_OPTIONS.durationSeconds})
  --idle-clients N    connections of the idle scenario (${DEFAULT_OPTIONS.idleClients})
  --hold S            seconds the idle connections are held (${DEFAULT_OPTIONS.holdSeconds})
  --fanout-clients N  subscribers of the one-channel scenario (${DEFAULT_OPTIONS.fanOutClients})
  --fanout-rate N     msg/s of the one-channel scenario (${DEFAULT_OPTIONS.fanOutRate})
  --deflate           clients offer permessage-deflate (as browsers do)
  --profile           CPU-profile echo-edge's worker isolate while measuring (bench/.work/profiles/)
  --tiers N           workerd processes of echo-edge's local edge: 2 as npm start runs it, or 1 (${DEFAULT_OPTIONS.tiers})`;

function listOf<T extends string>(raw: string | undefined, allowed: readonly T[], fallback: T[]): T[] {
  if (raw === undefined) return fallback;
  const items = raw.split(",").map((item) => item.trim());
  const unknown = items.filter((item) => !allowed.includes(item as T));
  if (unknown.length) throw new Error(`unknown ${unknown.join(", ")}: expected some of ${allowed.join(", ")}`);
  return items as T[];
}

function count(raw: string | undefined, fallback: number, name: string): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number >= 0, got "${raw}"`);
  return value;
}

function tierCount(raw: string): 1 | 2 {
  if (raw !== "1" && raw !== "2") throw new Error(`--tiers must be 1 or 2, got "${raw}"`);
  return raw === "1" ? 1 : 2;
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenario: { type: "string" },
      target: { type: "string" },
      clients: { type: "string" },
      rate: { type: "string" },
      duration: { type: "string" },
      "idle-clients": { type: "string" },
      hold: { type: "string" },
      "fanout-clients": { type: "string" },
      "fanout-rate": { type: "string" },
      deflate: { type: "boolean" },
      profile: { type: "boolean" },
      tiers: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const d = DEFAULT_OPTIONS;
  return {
    scenarios: listOf<ScenarioName>(values.scenario, SCENARIOS, d.scenarios),
    targets: listOf<TargetName>(values.target, TARGETS, d.targets),
    clients: count(values.clients, d.clients, "clients"),
    rate: count(values.rate, d.rate, "rate"),
    durationSeconds: count(values.duration, d.durationSeconds, "duration"),
    idleClients: count(values["idle-clients"], d.idleClients, "idle-clients"),
    holdSeconds: count(values.hold, d.holdSeconds, "hold"),
    fanOutClients: count(values["fanout-clients"], d.fanOutClients, "fanout-clients"),
    fanOutRate: count(values["fanout-rate"], d.fanOutRate, "fanout-rate"),
    deflate: values.deflate ?? d.deflate,
    profile: values.profile ?? d.profile,
    tiers: values.tiers === undefined ? d.tiers : tierCount(values.tiers),
  };
}

/** `npm ci` when the lockfile allows, else `npm install`; npm is on PATH under `npm run`. */
function installBenchDependencies(): void {
  if (existsSync(join(BENCH_DIR, "node_modules/laravel-echo-server/package.json"))) return;
  const command = existsSync(join(BENCH_DIR, "package-lock.json")) ? "ci" : "install";
  console.log(`installing the bench's dependencies: npm ${command} --prefix bench`);
  const result = spawnSync("npm", [command, "--prefix", BENCH_DIR, "--no-audit", "--no-fund"], { stdio: "inherit" });
  if (result.status !== 0) throw new Error(`npm ${command} --prefix bench failed`);
}

let options: BenchOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  console.error(`${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
installBenchDependencies();
const { runBench } = await import("./bench.ts");
await runBench(options, ["npm run bench", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(" "));
