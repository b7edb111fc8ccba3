/**
 * Measurement primitives for the benchmark: a latency histogram cheap enough for
 * the delivery hot path, and CPU/RSS readings of other processes from /proc (the
 * servers under test run in child processes, whose cost is the point).
 */
import { readdirSync, readFileSync } from "node:fs";

/** Log-bucketed histogram: 1% relative precision from 1 µs to ~1,000 s, O(1) record. */
export class LatencyHistogram {
  static readonly #MIN_MS = 0.001;
  static readonly #LOG_BASE = Math.log(1.01);
  readonly #buckets = new Uint32Array(2100);
  count = 0;
  max = 0;

  record(ms: number): void {
    const index = ms <= LatencyHistogram.#MIN_MS ? 0 : Math.ceil(Math.log(ms / LatencyHistogram.#MIN_MS) / LatencyHistogram.#LOG_BASE);
    this.#buckets[Math.min(index, this.#buckets.length - 1)]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  /** Upper bound of the bucket holding the q-quantile (so never below the true value by more than 1%). */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.#buckets.length; i++) {
      seen += this.#buckets[i]!;
      if (seen >= rank) return Math.min(LatencyHistogram.#MIN_MS * Math.pow(1.01, i), this.max);
    }
    return this.max;
  }
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ: 100 on every Linux ABI Node supports

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** argv joined by spaces. */
  command: string;
}

/** Every process on the machine with its parent, from /proc. */
function listProcesses(): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // The command name in parentheses may contain spaces: fields after it are fixed.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const command = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
      processes.push({ pid: Number(entry), ppid: Number(fields[1]), command });
    } catch {
      // exited while we looked
    }
  }
  return processes;
}

/** The descendants of `root` (not `root` itself). */
export function descendantsOf(root: number): ProcessInfo[] {
  const all = listProcesses();
  const found: ProcessInfo[] = [];
  const frontier = [root];
  while (frontier.length) {
    const parent = frontier.pop()!;
    for (const process of all) {
      if (process.ppid === parent) {
        found.push(process);
        frontier.push(process.pid);
      }
    }
  }
  return found;
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Resident set size in MiB; 0 once the process is gone. */
export function rssMiB(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** A named group of processes whose CPU and memory are reported together. */
export interface ProcessGroup {
  name: string;
  pids: number[];
}

export interface GroupUsage {
  name: string;
  /** CPU seconds used during the window. */
  cpuSeconds: number;
  /** Share of one core over the window, in percent. */
  cpuPercent: number;
  rssMiB: number;
}

/** CPU seconds all cores of the machine spent busy so far (every process, the kernel included). */
export function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS_PER_SECOND;
}

/** CPU used by groups of processes, and by everything else, between `start()` and `stop()`. */
export class CpuWindow {
  readonly #groups: ProcessGroup[];
  #startCpu: number[] = [];
  #startMachine = 0;
  #startTime = 0;
  /** Set by `stop()`: CPU the rest of the machine used meanwhile, in percent of one core (other work skews a result). */
  otherCpuPercent = 0;

  constructor(groups: ProcessGroup[]) {
    this.#groups = groups;
  }

  start(): this {
    this.#startCpu = this.#groups.map((group) => sumOf(group.pids.map(cpuSeconds)));
    this.#startMachine = machineBusySeconds();
    this.#startTime = performance.now();
    return this;
  }

  stop(): GroupUsage[] {
    const seconds = (performance.now() - this.#startTime) / 1000;
    const groups = this.#groups.map((group, i) => {
      const used = sumOf(group.pids.map(cpuSeconds)) - this.#startCpu[i]!;
      return {
        name: group.name,
        cpuSeconds: used,
        cpuPercent: (100 * used) / seconds,
        rssMiB: sumOf(group.pids.map(rssMiB)),
      };
    });
    const other = machineBusySeconds() - this.#startMachine - sumOf(groups.map((group) => group.cpuSeconds));
    this.otherCpuPercent = Math.max(0, (100 * other) / seconds);
    return groups;
  }
}

export function sumOf(values: number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
