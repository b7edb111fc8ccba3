/**
 * CPU profiles of the Worker tier's isolate (the local edge runs the Durable
 * Objects in a second workerd) through workerd's inspector (one session per
 * isolate), so a bench run can say where echo-edge's CPU goes. Profiles open in Chrome DevTools; a summary of self time goes into the report.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import WebSocket from "ws";

const PROFILE_DIR = join(import.meta.dirname, ".work/profiles");

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface ProfileSummary {
  path: string;
  /** Functions with the most self time, in percent of the samples. */
  top: { function: string; selfPercent: number }[];
}

export class IsolateProfiler {
  readonly #debuggerUrl: string;
  /** The bundle workerd runs, to name the source module of a profiled line. */
  readonly #bundlePath: string;
  #socket: WebSocket | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  constructor(debuggerUrl: string, bundlePath: string) {
    this.#debuggerUrl = debuggerUrl;
    this.#bundlePath = bundlePath;
  }

  #call(method: string, params: object = {}): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket!.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(): Promise<void> {
    // workerd's inspector refuses connections without a local Origin.
    const socket = new WebSocket(this.#debuggerUrl, { perMessageDeflate: false, origin: "http://localhost" });
    socket.on("message", (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      const pending = message.id === undefined ? undefined : this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id!);
      if (message.error) pending.reject(new Error(message.error.message));
      else pending.resolve(message.result);
    });
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    this.#socket = socket;
    await this.#call("Profiler.enable");
    await this.#call("Profiler.setSamplingInterval", { interval: 200 });
    await this.#call("Profiler.start");
  }

  /** Stops, writes `<name>.cpuprofile` and returns where the time went. */
  async stop(name: string): Promise<ProfileSummary> {
    const { profile } = (await this.#call("Profiler.stop")) as { profile: CpuProfile };
    this.#socket!.terminate();
    mkdirSync(PROFILE_DIR, { recursive: true });
    const path = join(PROFILE_DIR, `${name}.cpuprofile`);
    writeFileSync(path, JSON.stringify(profile));
    return { path, top: summarize(profile, readFileSync(this.#bundlePath, "utf8").split("\n")) };
  }
}

/** Where a bundle line comes from: esbuild precedes each module with a `// <path>` comment. */
function describeLine(bundle: string[], lineNumber: number): string {
  let module = "?";
  for (let i = lineNumber; i >= 0; i--) {
    const marker = /^\/\/ (\S+\.[jt]s)$/.exec(bundle[i] ?? "");
    if (marker) {
      module = marker[1]!;
      break;
    }
  }
  return `${module}: ${(bundle[lineNumber] ?? "").trim().slice(0, 90)}`;
}

function summarize(profile: CpuProfile, bundle: string[], count = 15): ProfileSummary["top"] {
  const selfHits = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = url ? `${functionName || "(anonymous)"} in ${describeLine(bundle, lineNumber)}` : functionName || "(native)";
    selfHits.set(key, (selfHits.get(key) ?? 0) + hits);
    total += hits;
  }
  return [...selfHits]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([fn, hits]) => ({ function: fn, selfPercent: (100 * hits) / total }));
}
