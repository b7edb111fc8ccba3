/**
 * `npm run bench:requests`: Durable Object requests per connect and per publish,
 * measured. The local edge runs with METER_REQUESTS=true, so every entry point a
 * Durable Object serves logs a `do_request` line (worker/metering.ts); this counts
 * them between marks while real clients connect, subscribe and leave, and while
 * the bridge's signed route publishes. Prints a Markdown table and writes it to
 * bench/results/requests-<timestamp>.md. About two minutes.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startLocalEdge } from "../scripts/local-edge.ts";
import { connected, ioFor, type AnySocket, type ClientVersion } from "../test/support/clients.ts";
import { publishPath, signatureHeaders } from "../worker/publish/signature.ts";

const APP = { appId: "requests", key: "requests-key" };
const BRIDGE_SECRET = "requests-bridge-secret";
/** How long a channel waits before reporting its message counters (COUNTER_REPORT_DELAY_MS in durable-objects/channel.ts). */
const CHANNEL_REPORT_DELAY_MS = 5_000;
/** Timers that only decide when a counted alarm fires, not how many fire: shortened so the run stays near two minutes. */
const RECOVERY_WINDOW_MS = 2_000;
const UPGRADE_TIMEOUT_MS = 2_000;
const VARS = {
  CLIENTS: JSON.stringify([APP]),
  BRIDGE_SECRET,
  METER_REQUESTS: "true",
  RECOVERY_WINDOW: String(RECOVERY_WINDOW_MS),
  UPGRADE_TIMEOUT: String(UPGRADE_TIMEOUT_MS),
  // Heartbeat alarms are one per host per interval whatever its clients do (priced in COST.md from the code):
  // an interval longer than the run keeps them out of the per-connect and per-publish counts.
  PING_INTERVAL: "600000",
};
/** No do_request line for this long: what was set off has been served. */
const QUIET_MS = 1_000;
const CONNECT_CLIENTS = 50;
const CHANNELS_PER_CLIENT = 3;
const PUBLISH_CHANNELS = 3;
const SUBSCRIBERS_PER_CHANNEL = 10;
const BACK_TO_BACK_PUBLISHES = 30;
const QUIET_PUBLISHES = 3;
/** Longer than the channel's report delay, so each of these publishes finds its channel quiet. */
const QUIET_SPACING_MS = CHANNEL_REPORT_DELAY_MS + 1_000;
const PROBE_EVENT = "App\\Events\\Probe";
/** Incoming WebSocket messages are billed 1 request per 20; every other entry point is 1. */
const MESSAGE_ENTRY = "ConnectionHostObject.webSocketMessage";
const MESSAGES_PER_BILLED_REQUEST = 20;

type Counts = Map<string, number>;

/** Every `do_request` line the edge logs, counted by `object.entry`. */
class RequestCounter {
  private readonly counts: Counts = new Map();
  private lastAt = Date.now();

  record(line: string): void {
    const at = line.indexOf('{"level":"info","event":"do_request"');
    if (at < 0) return;
    const { object, entry } = JSON.parse(line.slice(at)) as { object: string; entry: string };
    const key = `${object}.${entry}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.lastAt = Date.now();
  }

  mark(): Counts {
    return new Map(this.counts);
  }

  /** What was counted since `mark`. */
  since(mark: Counts): Counts {
    return new Map([...this.counts].map(([key, count]) => [key, count - (mark.get(key) ?? 0)] as const).filter(([, count]) => count > 0));
  }

  /** Waits at least `atLeastMs` (for alarms set meanwhile to fire), then until nothing was counted for QUIET_MS. */
  async settle(atLeastMs = 0): Promise<void> {
    await sleep(atLeastMs);
    while (Date.now() - this.lastAt < QUIET_MS) await sleep(100);
  }
}

const combined = (...parts: Counts[]): Counts => {
  const total: Counts = new Map();
  for (const part of parts) for (const [key, count] of part) total.set(key, (total.get(key) ?? 0) + count);
  return total;
};

async function waitFor(done: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A socket.io-client that counts the probe events it receives. */
interface Client {
  socket: AnySocket;
  received: number;
}

async function connectClient(url: string, version: ClientVersion, websocketOnly: boolean): Promise<Client> {
  const socket = ioFor(version)(url, { forceNew: true, reconnection: false, ...(websocketOnly && { transports: ["websocket"] }) });
  const client = { socket, received: 0 };
  socket.on(PROBE_EVENT, () => client.received++);
  await connected(socket);
  return client;
}

/** Subscribes as laravel-echo does; public channels ask Laravel nothing. */
function subscribe(client: Client, channel: string): void {
  client.socket.emit("subscribe", { channel, auth: { headers: {} } });
}

/** One signed batch through the bridge's route, as bridge/ sends them. */
async function publishBatch(url: string, channels: string[]): Promise<void> {
  const body = JSON.stringify({
    id: crypto.randomUUID(),
    messages: channels.map((channel) => ({ channel, event: PROBE_EVENT, data: { channel }, socket: null })),
  });
  const headers = await signatureHeaders(BRIDGE_SECRET, { method: "POST", path: publishPath(APP.appId), body });
  const response = await fetch(`${url}${publishPath(APP.appId)}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  if (!response.ok) throw new Error(`publish: ${response.status} ${await response.text()}`);
}

interface ConnectKind {
  label: string;
  version: ClientVersion;
  websocketOnly: boolean;
  /** Network loss closes the transport under the session (`socket.io.engine.close()`); clean is `socket.disconnect()`. */
  networkLoss: boolean;
}

const CONNECT_KINDS: ConnectKind[] = [4, 2].flatMap((version) =>
  (version === 4 ? [true, false] : [true]).flatMap((websocketOnly) =>
    [true, false].map((networkLoss) => ({
      label: `socket.io-client ${version}, ${websocketOnly ? "websocket" : "polling then upgrade"}, ${networkLoss ? "network loss" : "disconnect()"}`,
      version: version as ClientVersion,
      websocketOnly,
      networkLoss,
    })),
  ),
);

/**
 * Connect, subscribe and disconnect, each client on channels of its own: in the
 * workload COST.md prices, reconnects are spread over an hour, so a channel's
 * join, leave and occupancy report rarely share a moment with another client's.
 * The probe that proves the subscriptions live, and its alarms, are left out.
 */
async function measureConnects(url: string, counter: RequestCounter, kind: ConnectKind, run: number): Promise<Counts> {
  const start = counter.mark();
  const clients = await Promise.all(Array.from({ length: CONNECT_CLIENTS }, () => connectClient(url, kind.version, kind.websocketOnly)));
  const channels = clients.map((client, i) => {
    const own = Array.from({ length: CHANNELS_PER_CLIENT }, (_, k) => `requests.connect.${run}.${i}.${k}`);
    for (const channel of own) subscribe(client, channel);
    return own;
  });
  // A polling client's upgrade leaves the host an alarm at its deadline.
  await counter.settle(kind.websocketOnly ? 0 : UPGRADE_TIMEOUT_MS);
  const connecting = counter.since(start);

  await publishBatch(url, channels.flat());
  await waitFor(() => clients.every((client) => client.received === CHANNELS_PER_CLIENT), `the probes of ${kind.label}`);
  await counter.settle(CHANNEL_REPORT_DELAY_MS);

  const leavingFrom = counter.mark();
  for (const { socket } of clients) {
    if (kind.networkLoss) socket.io.engine.close();
    else socket.close();
  }
  // Lost Socket.IO v4 sessions are kept for the recovery window, then a channel alarm ends them.
  await counter.settle(RECOVERY_WINDOW_MS + 500);
  return combined(connecting, counter.since(leavingFrom));
}

interface PublishResults {
  backToBack: Counts;
  quiet: Counts;
}

/** Subscribers on one host, SUBSCRIBERS_PER_CHANNEL per channel; one message per batch, one channel per batch. */
async function measurePublishes(url: string, counter: RequestCounter): Promise<PublishResults> {
  const channels = Array.from({ length: PUBLISH_CHANNELS }, (_, i) => `requests.publish.${i}`);
  const subscribers = await Promise.all(
    channels.map(async (channel) => {
      const clients = await Promise.all(Array.from({ length: SUBSCRIBERS_PER_CHANNEL }, () => connectClient(url, 4, true)));
      for (const client of clients) subscribe(client, channel);
      return clients;
    }),
  );
  await counter.settle();
  const published = channels.map(() => 0);
  const publish = async (index: number) => {
    await publishBatch(url, [channels[index]!]);
    published[index]!++;
  };
  const allDelivered = () => subscribers.every((clients, i) => clients.every((client) => client.received === published[i]));

  const busyFrom = counter.mark();
  for (let n = 0; n < BACK_TO_BACK_PUBLISHES; n++) await publish(n % PUBLISH_CHANNELS);
  await waitFor(allDelivered, "the back-to-back publishes");
  await counter.settle(CHANNEL_REPORT_DELAY_MS);
  const backToBack = counter.since(busyFrom);

  const quietFrom = counter.mark();
  for (let n = 0; n < QUIET_PUBLISHES; n++) {
    await publish(n % PUBLISH_CHANNELS);
    await waitFor(allDelivered, "a quiet publish");
    await sleep(QUIET_SPACING_MS);
  }
  await counter.settle();
  const quiet = counter.since(quietFrom);

  for (const client of subscribers.flat()) client.socket.close();
  return { backToBack, quiet };
}

/** Requests as billed: incoming WebSocket messages at 1 per 20. */
function billed(counts: Counts): number {
  let total = 0;
  for (const [key, count] of counts) total += key === MESSAGE_ENTRY ? count / MESSAGES_PER_BILLED_REQUEST : count;
  return total;
}

const total = (counts: Counts) => [...counts.values()].reduce((a, b) => a + b, 0);

/** One row per object.entry seen in any column, values per event; then the totals. */
function table(columns: { label: string; counts: Counts; events: number }[]): string {
  const keys = [...new Set(columns.flatMap((column) => [...column.counts.keys()]))].sort();
  const per = (value: number, events: number) => (value / events).toFixed(2);
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    row(["object.entry", ...columns.map((column) => column.label)]),
    row(["---", ...columns.map(() => "---:")]),
    ...keys.map((key) => row([`\`${key}\``, ...columns.map((column) => per(column.counts.get(key) ?? 0, column.events))])),
    row(["**Durable Object requests**", ...columns.map((column) => `**${per(total(column.counts), column.events)}**`)]),
    row(["**billed** (WebSocket messages at 1 per 20)", ...columns.map((column) => `**${per(billed(column.counts), column.events)}**`)]),
  ].join("\n");
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const counter = new RequestCounter();
  const edge = await startLocalEdge({ vars: VARS, onLog: (line) => counter.record(line) });
  let markdown: string;
  try {
    const connects: { label: string; counts: Counts; events: number }[] = [];
    for (const [run, kind] of CONNECT_KINDS.entries()) {
      console.log(`per connect: ${kind.label}`);
      connects.push({ label: kind.label, counts: await measureConnects(edge.url, counter, kind, run), events: CONNECT_CLIENTS });
    }
    console.log("per publish");
    const publishes = await measurePublishes(edge.url, counter);
    const seconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
    markdown = [
      `Run ${startedAt.toISOString().slice(0, 16).replace("T", " ")} UTC, \`npm run bench:requests\`, ${seconds} s.`,
      "",
      "Durable Object requests counted by the objects themselves (METER_REQUESTS=true: one `do_request` line per fetch, RPC call, alarm and " +
        "WebSocket event served, worker/metering.ts) on the local edge (scripts/local-edge.ts, two workerd tiers). " +
        "Close and error events are counted as full requests (Cloudflare documents only messages at 1 per 20). " +
        `Timers shortened, counts unchanged: RECOVERY_WINDOW ${RECOVERY_WINDOW_MS} ms, UPGRADE_TIMEOUT ${UPGRADE_TIMEOUT_MS} ms; ` +
        `PING_INTERVAL ${VARS.PING_INTERVAL} ms keeps heartbeat alarms (one per host per interval) out.`,
      "",
      `### Per connect: connect, subscribe to ${CHANNELS_PER_CLIENT} public channels, disconnect`,
      "",
      `${CONNECT_CLIENTS} clients per column, all at once, each on ${CHANNELS_PER_CLIENT} channels of its own; per client, ` +
        `until every alarm the disconnect set off had run. The probe publish proving the subscriptions live is not counted.`,
      "",
      table(connects),
      "",
      "### Per publish: one message per bridge batch, one channel per batch",
      "",
      `${PUBLISH_CHANNELS} channels with ${SUBSCRIBERS_PER_CHANNEL} socket.io-client 4 subscribers each, all on one connection host. ` +
        `Back to back: ${BACK_TO_BACK_PUBLISHES} publishes in turn over the channels, then the channels' report alarms. ` +
        `Quiet: ${QUIET_PUBLISHES} publishes ${QUIET_SPACING_MS / 1000} s apart, each channel quiet for longer than its ${CHANNEL_REPORT_DELAY_MS / 1000} s report delay.`,
      "",
      table([
        { label: "back to back", counts: publishes.backToBack, events: BACK_TO_BACK_PUBLISHES },
        { label: `${QUIET_SPACING_MS / 1000} s apart`, counts: publishes.quiet, events: QUIET_PUBLISHES },
      ]),
      "",
    ].join("\n");
  } finally {
    await edge.stop();
  }
  const directory = join(import.meta.dirname, "results");
  mkdirSync(directory, { recursive: true });
  const path = join(directory, `requests-${startedAt.toISOString().slice(0, 19).replace(/:/g, "-")}.md`);
  writeFileSync(path, `# Durable Object requests per connect and per publish\n\n${markdown}`);
  console.log(`\n${markdown}\nwritten to ${relative(process.cwd(), path)}`);
}

await main();
