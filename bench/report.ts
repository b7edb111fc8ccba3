/**
 * The benchmark's report: JSON (everything measured) and Markdown (a table per
 * scenario with echo-edge / laravel-echo-server ratios, and the goals of issue 6),
 * written to bench/results/, the Markdown also into bench/README.md after a full run.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join, relative } from "node:path";
import type { LoadResult } from "./load.ts";
import { sumOf } from "./metrics.ts";
import { SCENARIOS, TARGETS, type BenchOptions, type ScenarioName, type TargetName } from "./scenarios.ts";

const BENCH_DIR = import.meta.dirname;
const README = join(BENCH_DIR, "README.md");
const LATEST_START = "<!-- latest results: written by npm run bench -->";
const LATEST_END = "<!-- end of latest results -->";

export type Failed = { error: string };

export interface ScenarioOutcome {
  name: Exclude<ScenarioName, "bridge">;
  title: string;
  results: Partial<Record<TargetName, LoadResult | Failed>>;
  /** The last lines a server printed, kept when its load failed or lost messages. */
  serverOutputTail?: Partial<Record<TargetName, string>>;
}

export interface BridgeResult {
  /** The bridge's own rate: its backlog drained with Redis holding the messages. */
  messagesPerSecond: number;
  /** msgs/s of each phase bridge-throughput.ts runs. */
  phases: Record<string, number>;
  summary: string[];
}

export interface BenchReport {
  date: string;
  command: string;
  machine: Record<string, string>;
  /** Other work on the machine just before the run, percent of one core. */
  backgroundCpuPercent: number;
  options: BenchOptions;
  servers: Partial<Record<TargetName, string>>;
  scenarios: ScenarioOutcome[];
  bridge?: BridgeResult | Failed;
  elapsedSeconds?: number;
}

function packageVersion(path: string): string {
  try {
    return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

export function describeMachine(): Record<string, string> {
  const root = join(BENCH_DIR, "..");
  return {
    cpu: `${cpus().length} x ${cpus()[0]?.model ?? "unknown"}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    kernel: `Linux ${release()}`,
    node: process.version,
    wrangler: packageVersion(join(root, "node_modules/wrangler/package.json")),
    "laravel-echo-server": packageVersion(join(BENCH_DIR, "node_modules/laravel-echo-server/package.json")),
    "socket.io (in laravel-echo-server)": packageVersion(join(BENCH_DIR, "node_modules/socket.io/package.json")),
  };
}

const isResult = (value: LoadResult | Failed | undefined): value is LoadResult => value !== undefined && !("error" in value);

function fixed(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "-";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A numeric row: the two values and echo-edge / laravel-echo-server. */
interface Row {
  label: string;
  value: (result: LoadResult) => number | string;
  digits?: number;
  /** Whether a ratio means anything for this row. */
  ratio?: boolean;
}

function serverCpuPercent(result: LoadResult): number {
  return sumOf(result.serverUsage.map((usage) => usage.cpuPercent));
}

function bridgeBatchSize(result: LoadResult): string {
  // Every request, whatever its outcome, is a billed Worker request.
  const requests = sumOf(Object.entries(result.counterDeltas ?? {}).filter(([name]) => name.startsWith("echo_bridge_publish_requests_total")).map(([, n]) => n));
  const forwarded = result.counterDeltas?.echo_bridge_messages_forwarded_total;
  return requests && forwarded !== undefined ? `${fixed(forwarded / requests, 1)} (${requests} requests)` : "-";
}

function holdCpuPercent(result: LoadResult, window: "cpu" | "cpuUnconnected"): number {
  return sumOf(result.hold![window].map((usage) => usage.cpuPercent));
}

function serverRss(result: LoadResult): number {
  return sumOf(result.serverUsage.map((usage) => usage.rssMiB));
}

function breakdown(result: LoadResult, pick: (usage: LoadResult["serverUsage"][number]) => number, digits: number): string {
  if (result.serverUsage.length < 2) return "";
  return ` (${result.serverUsage.map((usage) => `${usage.name} ${fixed(pick(usage), digits)}`).join(", ")})`;
}

const ROWS: Row[] = [
  {
    label: "clients connected",
    value: (r) => `${r.clients.connected} / ${r.clients.requested}${r.clients.cappedAt ? ` (capped by ${r.clients.cappedAt.reason})` : ""}`,
  },
  { label: "connects/s", value: (r) => r.connectsPerSecond, ratio: true },
  { label: "subscriptions live before publishing", value: (r) => `${r.ready} / ${r.clients.connected}` },
  { label: "permessage-deflate negotiated", value: (r) => Object.entries(r.extensions).map(([ext, n]) => `${ext === "none" ? "no" : "yes"} (${n})`).join(", ") },
  { label: "messages published", value: (r) => r.published },
  { label: "delivered / expected", value: (r) => `${r.unique} / ${r.expected}` },
  { label: "lost / duplicates / out of order", value: (r) => `${r.lost} / ${r.duplicates} / ${r.orderViolations}` },
  { label: "misrouted / unexpected disconnects", value: (r) => `${r.misrouted} / ${r.unexpectedCloses}` },
  { label: "deliveries/s", value: (r) => r.deliveriesPerSecond, ratio: true },
  { label: "latency p50 (ms)", value: (r) => r.latencyMs.p50, digits: 1, ratio: true },
  { label: "latency p95 (ms)", value: (r) => r.latencyMs.p95, digits: 1, ratio: true },
  { label: "latency p99 (ms)", value: (r) => r.latencyMs.p99, digits: 1, ratio: true },
  { label: "latency max (ms)", value: (r) => r.latencyMs.max, digits: 1, ratio: true },
  { label: "bridge: messages per publish request to the worker", value: (r) => bridgeBatchSize(r) },
  { label: "server CPU (% of one core)", value: (r) => `${fixed(serverCpuPercent(r))}${breakdown(r, (u) => u.cpuPercent, 0)}` },
  { label: "server CPU per delivery (µs)", value: (r) => r.serverCpuMicrosPerDelivery, digits: 1, ratio: true },
  { label: "server RSS at the end (MiB)", value: (r) => `${fixed(serverRss(r))}${breakdown(r, (u) => u.rssMiB, 0)}` },
  {
    label: "load generator CPU (% of one core)",
    value: (r) => `${fixed(r.generator.cpuPercent)}${r.generator.saturated ? " SATURATED" : ""}, loop delay p99 ${fixed(r.generator.eventLoopDelayP99Ms, 1)} ms`,
  },
  { label: "redis / other processes CPU (%)", value: (r) => `${fixed(r.redisCpuPercent)} / ${fixed(r.otherCpuPercent)}` },
];

const HOLD_ROWS: Row[] = [
  { label: "server RSS before connecting (MiB)", value: (r) => sumOf(Object.values(r.hold!.rssBeforeMiB)), ratio: true },
  { label: "server RSS while held, peak (MiB)", value: (r) => sumOf(Object.values(r.hold!.rssHeldMiB)), ratio: true },
  {
    label: "RSS per held connection (KiB)",
    value: (r) => ((sumOf(Object.values(r.hold!.rssHeldMiB)) - sumOf(Object.values(r.hold!.rssBeforeMiB))) * 1024) / r.clients.connected,
    digits: 1,
    ratio: true,
  },
  {
    label: "server CPU with no connections / while held (% of one core)",
    value: (r) => `${fixed(holdCpuPercent(r, "cpuUnconnected"), 1)} / ${fixed(holdCpuPercent(r, "cpu"), 1)}`,
  },
  {
    label: "server CPU per held connection (µs per second, heartbeats)",
    value: (r) => (Math.max(0, holdCpuPercent(r, "cpu") - holdCpuPercent(r, "cpuUnconnected")) * 1e4) / r.clients.connected,
    digits: 2,
    ratio: true,
  },
  { label: "still connected after the hold", value: (r) => `${r.stillOpen} / ${r.clients.connected}` },
];

function cell(row: Row, result: LoadResult | Failed | undefined): string {
  if (result === undefined) return "not run";
  if (!isResult(result)) return "failed";
  const value = row.value(result);
  return typeof value === "number" ? fixed(value, row.digits) : value;
}

function ratioCell(row: Row, les: LoadResult | Failed | undefined, edge: LoadResult | Failed | undefined): string {
  if (!row.ratio || !isResult(les) || !isResult(edge)) return "";
  const a = row.value(les) as number;
  const b = row.value(edge) as number;
  return a > 0 && Number.isFinite(b) ? `${fixed(b / a, 2)}x` : "";
}

function scenarioTable(outcome: ScenarioOutcome): string[] {
  const les = outcome.results["laravel-echo-server"];
  const edge = outcome.results["echo-edge"];
  const held = (isResult(les) && les.hold) || (isResult(edge) && edge.hold);
  const rows = [...ROWS, ...(held ? HOLD_ROWS : [])];
  const lines = [
    `### ${SCENARIOS.indexOf(outcome.name) + 1}. ${outcome.name}: ${outcome.title}`,
    "",
    "| | laravel-echo-server | echo-edge | echo-edge / laravel-echo-server |",
    "|---|---:|---:|---:|",
    ...rows.map((row) => `| ${row.label} | ${cell(row, les)} | ${cell(row, edge)} | ${ratioCell(row, les, edge)} |`),
  ];
  for (const target of TARGETS) {
    const result = outcome.results[target];
    if (result && !isResult(result)) lines.push("", `${target} failed:`, "```", result.error, "```");
    if (isResult(result) && result.clients.failures.length) lines.push("", `${target} connection failures: ${result.clients.failures.join("; ")}`);
    const output = outcome.serverOutputTail?.[target];
    if (output) lines.push("", `<details><summary>${target}: last lines of its output</summary>`, "", "```", output, "```", "", "</details>");
    if (isResult(result) && result.profile) {
      lines.push(
        "",
        `${target} CPU profile of the worker isolate while measuring (\`${relative(BENCH_DIR, result.profile.path)}\`), self time:`,
        "",
        ...result.profile.top.map((entry) => `- ${fixed(entry.selfPercent, 1)}% ${entry.function}`),
      );
    }
  }
  return lines;
}

/** Issue 6's goals, each judged from this run's numbers (or "not measured"). */
function goals(report: BenchReport): string[] {
  const find = (name: ScenarioOutcome["name"], target: TargetName) => {
    const result = report.scenarios.find((s) => s.name === name)?.results[target];
    return isResult(result) ? result : undefined;
  };
  const verdict = (ok: boolean | undefined) => (ok === undefined ? "not measured" : ok ? "met" : "NOT met");
  const all = report.scenarios.flatMap((s) => Object.values(s.results)).filter(isResult);
  const clean = all.length ? all.every((r) => r.lost === 0 && r.duplicates === 0 && r.orderViolations === 0 && r.misrouted === 0) : undefined;
  const steady = [find("steady", "laravel-echo-server"), find("steady", "echo-edge")];
  const saturation = [find("saturation", "laravel-echo-server"), find("saturation", "echo-edge")];
  const idle = find("idle", "echo-edge");
  const bridge = report.bridge && !("error" in report.bridge) ? report.bridge : undefined;
  const pair = <T>(values: (LoadResult | undefined)[], judge: (les: LoadResult, edge: LoadResult) => T) =>
    values[0] && values[1] ? judge(values[0], values[1]) : undefined;
  return [
    "| goal | result | verdict |",
    "|---|---|---|",
    `| no loss, duplicate or reordering anywhere | ${all.map((r) => r.lost + r.duplicates + r.orderViolations + r.misrouted).reduce((a, b) => a + b, 0)} bad deliveries in ${all.length} loads | ${verdict(clean)} |`,
    `| steady load: echo-edge p99 <= laravel-echo-server p99 | ${pair(steady, (l, e) => `${fixed(e.latencyMs.p99, 1)} ms vs ${fixed(l.latencyMs.p99, 1)} ms`) ?? "-"} | ${verdict(pair(steady, (l, e) => e.latencyMs.p99 <= l.latencyMs.p99))} |`,
    `| saturation: echo-edge >= 2x deliveries/s | ${pair(saturation, (l, e) => `${fixed(e.deliveriesPerSecond / l.deliveriesPerSecond, 2)}x`) ?? "-"} | ${verdict(pair(saturation, (l, e) => e.deliveriesPerSecond >= 2 * l.deliveriesPerSecond))} |`,
    `| ${report.options.idleClients} idle connections held by echo-edge | ${idle ? `${idle.stillOpen} held, ${idle.unique}/${idle.expected} delivered after the hold${idle.clients.cappedAt ? `; only ${idle.clients.cappedAt.connections} tried: ${idle.clients.cappedAt.reason}` : ""}` : "-"} | ${verdict(idle && idle.clients.connected === report.options.idleClients && idle.stillOpen === idle.clients.connected && idle.lost === 0)} |`,
    `| bridge alone >= 100k msgs/s | ${bridge ? `${fixed(bridge.messagesPerSecond)} msgs/s` : "-"} | ${verdict(bridge && bridge.messagesPerSecond >= 100_000)} |`,
  ];
}

function renderMarkdown(report: BenchReport): string {
  const machine = Object.entries(report.machine).map(([key, value]) => `${key} ${value}`).join("; ");
  const lines = [
    `Run ${report.date.slice(0, 16).replace("T", " ")} UTC, \`${report.command}\`${report.elapsedSeconds ? `, ${Math.round(report.elapsedSeconds)} s` : ""}.`,
    "",
    `Machine: ${machine}. Generator, servers and Redis share these cores; "other processes" is CPU used meanwhile by anything else on the machine (${fixed(report.backgroundCpuPercent)}% of a core just before the run).`,
    "",
    ...TARGETS.filter((t) => report.servers[t]).map((t) => `- ${report.servers[t]}`),
    `- clients ${report.options.deflate ? "offer" : "do not offer"} permessage-deflate; 5 socket.io-client 2 (and, for echo-edge, 5 socket.io-client 4) clients run among the raw ones`,
    "",
    "Ratios are echo-edge / laravel-echo-server: above 1 is better for rates, below 1 is better for latency, CPU and memory.",
    "",
    "#### Goals (issue 6)",
    "",
    ...goals(report),
  ];
  for (const outcome of report.scenarios) lines.push("", ...scenarioTable(outcome));
  if (report.bridge) {
    const body = "error" in report.bridge ? ["failed:", "```", report.bridge.error, "```"] : ["```", ...report.bridge.summary, "```"];
    lines.push("", "### 5. bridge: the bridge alone into a sink (`bench/bridge-throughput.ts`, see BRIDGE.md)", "", ...body);
  }
  return lines.join("\n") + "\n";
}

/** Writes results/<timestamp>.json and .md, and the README's latest results after a full run; returns the paths. */
export function writeReport(report: BenchReport): string[] {
  const directory = join(BENCH_DIR, "results");
  mkdirSync(directory, { recursive: true });
  const stamp = report.date.slice(0, 19).replace(/:/g, "-");
  const markdown = renderMarkdown(report);
  const paths = [join(directory, `${stamp}.json`), join(directory, `${stamp}.md`)];
  writeFileSync(paths[0]!, JSON.stringify(report, null, 2) + "\n");
  writeFileSync(paths[1]!, markdown);
  const fullRun = SCENARIOS.every((s) => report.options.scenarios.includes(s)) && TARGETS.every((t) => report.options.targets.includes(t));
  if (fullRun) {
    const readme = readFileSync(README, "utf8");
    const start = readme.indexOf(LATEST_START);
    const end = readme.indexOf(LATEST_END);
    if (start < 0 || end < start) throw new Error(`${README} lacks the latest-results markers`);
    writeFileSync(README, readme.slice(0, start + LATEST_START.length) + "\n" + markdown + readme.slice(end));
    paths.push(README);
  }
  return paths.map((path) => relative(process.cwd(), path));
}
