/**
 * The benchmark's options (with the defaults of a full run, sized to finish in
 * under 10 minutes on 2 cores) and the loads they make.
 */
import type { LoadSpec } from "./load.ts";

export const TARGETS = ["laravel-echo-server", "echo-edge"] as const;
export type TargetName = (typeof TARGETS)[number];

export const SCENARIOS = ["steady", "saturation", "idle", "fanout", "bridge"] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface BenchOptions {
  scenarios: ScenarioName[];
  targets: TargetName[];
  /** Clients of the steady and saturation loads. */
  clients: number;
  /** Messages per second of the steady load. */
  rate: number;
  /** Publishing time of each measured load, seconds. */
  durationSeconds: number;
  idleClients: number;
  holdSeconds: number;
  fanOutClients: number;
  fanOutRate: number;
  deflate: boolean;
  /** CPU-profile echo-edge's worker isolate during each measured window. */
  profile: boolean;
  /** workerd processes of the local edge: 2 (Worker tier and Durable Object tier) as npm start runs it, or 1. */
  tiers: 1 | 2;
}

export const DEFAULT_OPTIONS: BenchOptions = {
  scenarios: [...SCENARIOS],
  targets: [...TARGETS],
  clients: 500,
  rate: 500,
  durationSeconds: 20,
  idleClients: 10_000,
  holdSeconds: 60,
  fanOutClients: 2_000,
  fanOutRate: 20,
  deflate: false,
  profile: false,
  tiers: 2,
};

export interface LoadScenario {
  name: Exclude<ScenarioName, "bridge">;
  title: string;
  spec: LoadSpec;
}

const CHANNELS = 10;
const SOCKET_IO_SAMPLE = 5;
/** Gives each message a body of ~200 bytes on the wire, like a small Laravel event. */
const PADDING_BYTES = 100;

export function loadScenarios(options: BenchOptions): LoadScenario[] {
  const base = {
    channels: CHANNELS,
    socketIoSample: SOCKET_IO_SAMPLE,
    durationMs: options.durationSeconds * 1000,
    holdMs: 0,
    paddingBytes: PADDING_BYTES,
    deflate: options.deflate,
  };
  const all: LoadScenario[] = [
    {
      name: "steady",
      title: `${options.clients} clients on ${CHANNELS} channels, ${options.rate} msg/s for ${options.durationSeconds} s`,
      spec: { ...base, clients: options.clients, rate: options.rate },
    },
    {
      name: "saturation",
      title: `${options.clients} clients on ${CHANNELS} channels, messages as fast as they are delivered, for ${options.durationSeconds} s`,
      spec: { ...base, clients: options.clients, rate: 0 },
    },
    {
      name: "idle",
      title: `${options.idleClients} idle connections held ${options.holdSeconds} s, then one message per channel`,
      // One message per channel proves every connection still delivers after the hold.
      spec: { ...base, clients: options.idleClients, rate: CHANNELS, durationMs: 1000, holdMs: options.holdSeconds * 1000 },
    },
    {
      name: "fanout",
      title: `one channel with ${options.fanOutClients} subscribers, ${options.fanOutRate} msg/s for ${options.durationSeconds} s`,
      spec: { ...base, clients: options.fanOutClients, channels: 1, rate: options.fanOutRate },
    },
  ];
  return all.filter((scenario) => options.scenarios.includes(scenario.name));
}
