/**
 * One measured load against one Socket.IO server: connect N clients over C
 * channels, prove every subscription live, optionally hold them idle, publish M
 * messages through Redis at a rate (or as fast as the server drains them), wait
 * for the deliveries, and account for every one. Target-agnostic: it needs a URL
 * to connect to, a publisher, and the server's processes to measure.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { connectRaw, connectSocketIo, type BenchClient, type ClientKind, type ConnectOptions } from "./clients.ts";
import { Ledger, Receiver } from "./ledger.ts";
import { CpuWindow, rssMiB, sumOf, type GroupUsage, type ProcessGroup } from "./metrics.ts";
import type { IsolateProfiler, ProfileSummary } from "./profiler.ts";
import { benchPayload, probePayload, type OutgoingMessage, type RedisPublisher } from "./publisher.ts";

export interface LoadSpec {
  /** Total clients, the socket.io-client sample included. */
  clients: number;
  /** Clients are spread round-robin over channels `bench.0` .. `bench.<channels-1>`. */
  channels: number;
  /** Real socket.io-client instances of each version the server speaks. */
  socketIoSample: number;
  /** Messages per second over all channels; 0 publishes as fast as the server drains them. */
  rate: number;
  durationMs: number;
  /** Time the connections are held idle before publishing (memory is sampled meanwhile). */
  holdMs: number;
  /** Length of the text field that pads each message to a realistic size. */
  paddingBytes: number;
  deflate: boolean;
}

export interface ServerUnderTest {
  name: string;
  /** Base URL Socket.IO clients connect to. */
  url: string;
  /** Whether it speaks Engine.IO 4 (socket.io-client 3+); laravel-echo-server does not. */
  speaksEio4: boolean;
  processes: ProcessGroup[];
  /** Profiles the server's CPU during the measured window, when asked for. */
  profiler?: IsolateProfiler;
  /** Counters the server keeps (the bridge's), read before and after the measured window. */
  counters?: () => Promise<Record<string, number>>;
  /** The most connections the server can take on this machine, when it knows a limit. */
  capacity?: { connections: number; reason: string };
}

export interface RunningServer extends ServerUnderTest {
  /** What runs and how clients reach it, for the report. */
  description: string;
  /** Everything its processes printed so far. */
  output(): string;
  stop(): Promise<void>;
}

export interface LoadResult {
  server: string;
  spec: LoadSpec;
  clients: {
    requested: number;
    /** Set when the server could not take `requested` connections on this machine. */
    cappedAt?: { connections: number; reason: string };
    connected: number;
    byKind: Partial<Record<ClientKind, number>>;
    failures: string[];
  };
  connectSeconds: number;
  connectsPerSecond: number;
  /** Clients whose subscription was proven live before publishing. */
  ready: number;
  readySeconds: number;
  /** permessage-deflate as negotiated, with how many clients got each answer. */
  extensions: Record<string, number>;
  published: number;
  publishSeconds: number;
  expected: number;
  delivered: number;
  unique: number;
  lost: number;
  duplicates: number;
  orderViolations: number;
  misrouted: number;
  unexpectedCloses: number;
  /** Clients still open at the end. */
  stillOpen: number;
  deliveriesPerSecond: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  generator: { cpuPercent: number; eventLoopDelayP99Ms: number; saturated: boolean };
  redisCpuPercent: number;
  /** CPU used meanwhile by processes outside the benchmark (percent of one core): high values mean a noisy run. */
  otherCpuPercent: number;
  /** CPU during publishing and draining, RSS at the end. */
  serverUsage: GroupUsage[];
  /** Server CPU (all its processes) per delivered message, in microseconds. */
  serverCpuMicrosPerDelivery: number;
  /**
   * For loads held idle: RSS before connecting and the peak while held; the server's
   * CPU with no connections (the runtime's own idle cost) and while holding them.
   */
  hold?: { rssBeforeMiB: Record<string, number>; rssHeldMiB: Record<string, number>; cpuUnconnected: GroupUsage[]; cpu: GroupUsage[] };
  profile?: ProfileSummary;
  /** How much each of the server's counters grew during the measured window. */
  counterDeltas?: Record<string, number>;
}

export interface LoadRun {
  server: ServerUnderTest;
  spec: LoadSpec;
  publisher: RedisPublisher;
  redisPid: number;
  /** Names the profile file. */
  label: string;
  log: (line: string) => void;
}

/** A generator using most of a core cannot be trusted to measure the server. */
const GENERATOR_SATURATED_PERCENT = 85;
const CONNECT_CONCURRENCY = 200;
const CONNECT_TIMEOUT_MS = 20_000;
const READY_TIMEOUT_MS = 60_000;
const PROBE_EVERY_MS = 250;
/** Unmeasured traffic first, paced as the load is, so JIT warm-up is not measured. */
const WARMUP_MS = 3_000;
/** With rate 0, at most this many deliveries are outstanding, so neither server's buffers (nor Redis's pub/sub output limit) decide the result. */
const IN_FLIGHT_DELIVERIES = 25_000;
const PUBLISH_CHUNK = 50;
/** Before an idle hold, the server's CPU with nobody connected, so that only the rest is charged to the held connections. */
const UNCONNECTED_SAMPLE_MS = 5_000;
/** Draining stops when nothing arrived for this long. */
const DRAIN_QUIET_MS = 3_000;
const DRAIN_LIMIT_MS = 60_000;

function channelName(index: number): string {
  return `bench.${index}`;
}

function deltas(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([name, value]) => [name, value - (before[name] ?? 0)]));
}

function groupRss(groups: ProcessGroup[]): Record<string, number> {
  return Object.fromEntries(groups.map((group) => [group.name, sumOf(group.pids.map(rssMiB))]));
}

async function connectClients(server: ServerUnderTest, spec: LoadSpec, ledger: Ledger, log: (line: string) => void) {
  const sampleKinds: ClientKind[] = server.speaksEio4 ? ["socket.io-client 2", "socket.io-client 4"] : ["socket.io-client 2"];
  const kindOf = (index: number): ClientKind => sampleKinds[Math.floor(index / spec.socketIoSample)] ?? "raw ws";
  const options: ConnectOptions = { deflate: spec.deflate, timeoutMs: CONNECT_TIMEOUT_MS };
  const clients: BenchClient[] = [];
  const failures = new Map<string, number>();
  let next = 0;
  const connectNext = async () => {
    while (next < spec.clients) {
      const index = next++;
      const kind = kindOf(index);
      const receiver = new Receiver(ledger, channelName(index % spec.channels));
      try {
        clients.push(
          kind === "raw ws"
            ? await connectRaw(server.url, receiver, options)
            : await connectSocketIo(kind, server.url, receiver, options),
        );
      } catch (error) {
        const reason = `${kind}: ${(error as Error).message}`;
        failures.set(reason, (failures.get(reason) ?? 0) + 1);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, connectNext));
  const seconds = (performance.now() - started) / 1000;
  for (const [reason, count] of failures) log(`  ${count} x ${reason}`);
  return { clients, seconds, failures: [...failures].map(([reason, count]) => `${count} x ${reason}`) };
}

/** Subscribes everyone, then probes each channel until all its subscribers answered. */
async function awaitSubscriptions(clients: BenchClient[], publisher: RedisPublisher, padding: string): Promise<number> {
  for (const client of clients) client.subscribe();
  const started = performance.now();
  while (performance.now() - started < READY_TIMEOUT_MS) {
    const waiting = new Set(clients.filter((c) => !c.receiver.ready).map((c) => c.receiver.channel));
    if (waiting.size === 0) break;
    await publisher.publish([...waiting].map((channel) => ({ channel, payload: probePayload(padding) })));
    await sleep(PROBE_EVERY_MS);
  }
  return (performance.now() - started) / 1000;
}

/** Calls `send(count)` so that `rate` messages a second go out for `durationMs`, catching up in bigger batches when late. */
async function atRate(rate: number, durationMs: number, send: (count: number) => Promise<void>): Promise<void> {
  const started = performance.now();
  const target = Math.round((rate * durationMs) / 1000);
  let sent = 0;
  while (sent < target) {
    const due = Math.min(target, Math.floor(((performance.now() - started) / 1000) * rate)) - sent;
    if (due > 0) {
      await send(due);
      sent += due;
    } else {
      await sleep(2);
    }
  }
}

interface PublishPhase {
  durationMs: number;
  /** Messages per second; 0: as fast as deliveries keep up, with a bounded number outstanding. */
  rate: number;
  payload: (seq: number) => string;
  /** Deliveries counted so far, for pacing when rate is 0. */
  delivered: () => number;
}

/** Publishes round-robin over the channels; returns how many messages went out and how many deliveries they owe. */
async function publish(spec: LoadSpec, publisher: RedisPublisher, subscribersOf: number[], phase: PublishPhase) {
  const sequence = new Array<number>(spec.channels).fill(0);
  const deliveredBefore = phase.delivered();
  let total = 0;
  let expected = 0;
  const build = (count: number): OutgoingMessage[] => {
    const messages: OutgoingMessage[] = [];
    for (let i = 0; i < count; i++) {
      const channel = total % spec.channels;
      messages.push({ channel: channelName(channel), payload: phase.payload(sequence[channel]!++) });
      expected += subscribersOf[channel]!;
      total++;
    }
    return messages;
  };
  const started = performance.now();
  if (phase.rate > 0) {
    await atRate(phase.rate, phase.durationMs, (count) => publisher.publish(build(count)));
  } else {
    const deadline = started + phase.durationMs;
    const meanFanOut = sumOf(subscribersOf) / spec.channels;
    while (performance.now() < deadline) {
      const outstanding = expected - (phase.delivered() - deliveredBefore);
      if (outstanding + PUBLISH_CHUNK * meanFanOut > IN_FLIGHT_DELIVERIES) await sleep(1);
      else await publisher.publish(build(PUBLISH_CHUNK));
    }
  }
  return { total, expected, deliveredBefore, started, seconds: (performance.now() - started) / 1000 };
}

/** Waits until `delivered()` reaches `target`, or stops moving. */
async function drain(delivered: () => number, target: number): Promise<void> {
  const started = performance.now();
  let last = -1;
  let lastProgress = started;
  while (delivered() < target && performance.now() - started < DRAIN_LIMIT_MS) {
    if (delivered() !== last) {
      last = delivered();
      lastProgress = performance.now();
    } else if (performance.now() - lastProgress > DRAIN_QUIET_MS) {
      return;
    }
    await sleep(20);
  }
}

export async function runLoad({ server, spec, publisher, redisPid, label, log }: LoadRun): Promise<LoadResult> {
  const ledger = new Ledger();
  const padding = "x".repeat(spec.paddingBytes);
  const before = groupRss(server.processes);
  let cpuUnconnected: GroupUsage[] = [];
  if (spec.holdMs > 0) {
    const window = new CpuWindow(server.processes).start();
    await sleep(UNCONNECTED_SAMPLE_MS);
    cpuUnconnected = window.stop();
  }
  const cappedAt = server.capacity && server.capacity.connections < spec.clients ? server.capacity : undefined;
  const clientCount = cappedAt?.connections ?? spec.clients;
  if (cappedAt) log(`  only ${cappedAt.connections} of ${spec.clients} clients: ${cappedAt.reason}`);
  log(`  connecting ${clientCount} clients (${spec.channels} channels, deflate ${spec.deflate ? "offered" : "not offered"})`);
  const connected = await connectClients(server, { ...spec, clients: clientCount }, ledger, log);
  const { clients } = connected;
  try {
    const readySeconds = await awaitSubscriptions(clients, publisher, padding);
    const ready = clients.filter((c) => c.receiver.ready).length;
    log(`  ${clients.length} connected in ${connected.seconds.toFixed(1)} s, ${ready} subscribed in ${readySeconds.toFixed(1)} s`);

    let hold: LoadResult["hold"];
    if (spec.holdMs > 0) {
      log(`  holding ${clients.length} connections for ${spec.holdMs / 1000} s`);
      const held: Record<string, number> = {};
      const holdCpu = new CpuWindow(server.processes).start();
      const holdUntil = performance.now() + spec.holdMs;
      while (performance.now() < holdUntil) {
        for (const [name, rss] of Object.entries(groupRss(server.processes))) held[name] = Math.max(held[name] ?? 0, rss);
        await sleep(Math.min(1000, Math.max(0, holdUntil - performance.now())));
      }
      hold = { rssBeforeMiB: before, rssHeldMiB: held, cpuUnconnected, cpu: holdCpu.stop() };
    }

    const subscribersOf = Array.from({ length: spec.channels }, (_, i) => clients.filter((c) => c.receiver.channel === channelName(i)).length);
    const warmUp = await publish(spec, publisher, subscribersOf, {
      durationMs: WARMUP_MS,
      rate: spec.rate,
      payload: () => probePayload(padding),
      delivered: () => ledger.probes,
    });
    await drain(() => ledger.probes, warmUp.deliveredBefore + warmUp.expected);
    const generator = { name: "load generator", pids: [process.pid] };
    const cpu = new CpuWindow([generator, { name: "redis", pids: [redisPid] }, ...server.processes]).start();
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    await server.profiler?.start();
    const countersBefore = await server.counters?.();
    const load = await publish(spec, publisher, subscribersOf, {
      durationMs: spec.durationMs,
      rate: spec.rate,
      payload: (seq) => benchPayload(seq, performance.now(), padding),
      delivered: () => ledger.unique,
    });
    await drain(() => ledger.unique, load.expected);
    const countersAfter = await server.counters?.();
    const profile = await server.profiler?.stop(label);
    loopDelay.disable();
    const [generatorUsage, redisUsage, ...serverUsage] = cpu.stop();
    const stillOpen = clients.length - ledger.unexpectedCloses;
    const deliverySeconds = Math.max(ledger.lastDeliveryAt - load.started, 1) / 1000;
    const extensions: Record<string, number> = {};
    for (const client of clients) {
      const key = client.extensions || "none";
      extensions[key] = (extensions[key] ?? 0) + 1;
    }
    const byKind: Partial<Record<ClientKind, number>> = {};
    for (const client of clients) byKind[client.kind] = (byKind[client.kind] ?? 0) + 1;
    const serverCpuSeconds = sumOf(serverUsage.map((usage) => usage.cpuSeconds));
    return {
      server: server.name,
      spec,
      clients: { requested: spec.clients, cappedAt, connected: clients.length, byKind, failures: connected.failures },
      connectSeconds: connected.seconds,
      connectsPerSecond: clients.length / connected.seconds,
      ready,
      readySeconds,
      extensions,
      published: load.total,
      publishSeconds: load.seconds,
      expected: load.expected,
      delivered: ledger.delivered,
      unique: ledger.unique,
      lost: load.expected - ledger.unique,
      duplicates: ledger.duplicates,
      orderViolations: ledger.orderViolations,
      misrouted: ledger.misrouted,
      unexpectedCloses: ledger.unexpectedCloses,
      stillOpen,
      deliveriesPerSecond: ledger.unique / deliverySeconds,
      latencyMs: {
        p50: ledger.latency.quantile(0.5),
        p95: ledger.latency.quantile(0.95),
        p99: ledger.latency.quantile(0.99),
        max: ledger.latency.max,
      },
      generator: {
        cpuPercent: generatorUsage!.cpuPercent,
        eventLoopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        saturated: generatorUsage!.cpuPercent >= GENERATOR_SATURATED_PERCENT,
      },
      redisCpuPercent: redisUsage!.cpuPercent,
      otherCpuPercent: cpu.otherCpuPercent,
      serverUsage,
      serverCpuMicrosPerDelivery: ledger.unique ? (serverCpuSeconds * 1e6) / ledger.unique : NaN,
      hold,
      profile,
      counterDeltas: countersBefore && countersAfter ? deltas(countersBefore, countersAfter) : undefined,
    };
  } finally {
    for (const client of clients) client.close();
  }
}
