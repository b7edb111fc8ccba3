/**
 * Buffers messages and POSTs them to the worker in signed batches.
 *
 * Channels are spread over lanes by a hash of their name; a lane sends one batch at
 * a time and the next only once the previous one is settled (accepted or given up),
 * so a channel's messages arrive in the order Redis delivered them while up to
 * `concurrency` requests run at once. A batch keeps its id and body across retries:
 * the worker remembers ids it has accepted, so a retry after a lost response is not
 * delivered twice.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { publishPath, signatureHeaders } from "../worker/publish/signature.ts";
import type { BridgeConfig } from "./config.ts";
import { isPowerOfTen, type Logger } from "./log.ts";

export const WORKER_STATES = ["unknown", "ok", "unreachable", "failing", "misconfigured"] as const;
export type WorkerState = (typeof WORKER_STATES)[number];

export interface ForwarderStats {
  worker: { state: WorkerState; since: number; url: string };
  forwarded: number;
  dropped: { overflow: number; rejected: number; tooLargeForWorker: number; shutdown: number };
  requests: { accepted: number; rejected: number; tooLarge: number; misconfigured: number; failed: number };
  buffer: { messages: number; bytes: number };
}

interface Held {
  /** Arrival order across all lanes, to find the oldest message when the buffer is full. */
  seq: number;
  text: string;
  size: number;
}

interface Batch {
  id: string;
  messages: Held[];
  body: string;
}

type Outcome =
  | { kind: "accepted"; refused: number }
  | { kind: "rejected" | "tooLarge"; detail: string }
  | { kind: "misconfigured" | "unreachable" | "failing"; detail: string };

/** A FIFO with O(1) shift: an index into an array that is compacted now and then. */
class Queue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  peek(): T | undefined {
    return this.items[this.head];
  }

  shift(): T | undefined {
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

class Lane {
  waiting = new Queue<Held>();
  waitingSize = 0;
  /** Formed and not yet settled, in send order; more than one only after a 413 split. */
  formed: Batch[] = [];
  running = false;
  windowTimer: NodeJS.Timeout | undefined;
}

/** FNV-1a: cheap, and spreads similar channel names (`orders.1`, `orders.2`) across lanes. */
function laneIndex(channel: string, lanes: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) {
    hash ^= channel.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % lanes;
}

function batchBody(id: string, messages: Held[]): string {
  let texts = "";
  for (let i = 0; i < messages.length; i++) texts += (i === 0 ? "" : ",") + messages[i]!.text;
  return `{"id":"${id}","messages":[${texts}]}`;
}

/** The worker answers `{"accepted":n,"rejected":m}`, m counting messages it found unusable. */
function refusedCount(responseBody: string): number {
  try {
    const { rejected } = JSON.parse(responseBody) as { rejected?: unknown };
    return typeof rejected === "number" && rejected > 0 ? rejected : 0;
  } catch {
    return 0;
  }
}

function snippet(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return "";
  return `: ${trimmed.length > 200 ? trimmed.slice(0, 200) + "..." : trimmed}`;
}

export class Forwarder {
  private readonly config: BridgeConfig;
  private readonly log: Logger;
  private readonly pool: Pool;
  private readonly publishUrl: string;
  /** What the request asks for: the worker's endpoint under ECHO_URL's path, if it has one. */
  private readonly publishPath: string;
  /** What the signature covers: the endpoint itself, so a batch is good for this app only. */
  private readonly signedPath: string;
  private readonly lanes: Lane[];
  /** Cancels backoff sleeps and requests when the shutdown deadline passes. */
  private readonly abort = new AbortController();
  private readonly batchIdPrefix = randomUUID();
  private batchCount = 0;
  private seq = 0;
  private heldMessages = 0;
  private heldBytes = 0;
  private forwarded = 0;
  private readonly dropped = { overflow: 0, rejected: 0, tooLargeForWorker: 0, shutdown: 0 };
  private readonly requests = { accepted: 0, rejected: 0, tooLarge: 0, misconfigured: 0, failed: 0 };
  /** Dropped for overflow since the buffer was last half empty, for the recovery log line. */
  private overflowEpisode = 0;
  private refusals = 0;
  private workerState: WorkerState = "unknown";
  private workerStateSince = Date.now();
  private flushing = false;
  private onIdle: (() => void) | undefined;

  constructor(config: BridgeConfig, log: Logger) {
    this.config = config;
    this.log = log;
    const url = new URL(config.echoUrl);
    this.signedPath = publishPath(config.appId);
    this.publishPath = url.pathname.replace(/\/+$/, "") + this.signedPath;
    this.publishUrl = url.origin + this.publishPath;
    this.pool = new Pool(url.origin, {
      connections: config.concurrency,
      headersTimeout: config.requestTimeoutMs,
      bodyTimeout: config.requestTimeoutMs,
      connect: { timeout: config.requestTimeoutMs },
    });
    this.lanes = Array.from({ length: config.concurrency }, () => new Lane());
  }

  /** Takes one message (wire JSON text) for `channel`. Never blocks, never throws. */
  enqueue(channel: string, text: string): void {
    const lane = this.lanes[laneIndex(channel, this.lanes.length)]!;
    const size = text.length;
    lane.waiting.push({ seq: this.seq++, text, size });
    lane.waitingSize += size;
    this.heldMessages++;
    this.heldBytes += size;
    if (this.heldMessages > this.config.bufferMaxMessages || this.heldBytes > this.config.bufferMaxBytes) {
      this.dropOldest();
    }
    this.schedule(lane);
  }

  stats(): ForwarderStats {
    return {
      worker: { state: this.workerState, since: this.workerStateSince, url: this.publishUrl },
      forwarded: this.forwarded,
      dropped: { ...this.dropped },
      requests: { ...this.requests },
      buffer: { messages: this.heldMessages, bytes: this.heldBytes },
    };
  }

  /**
   * Sends everything buffered, without waiting for batch windows, within `timeoutMs`;
   * what is still unsent then is dropped, counted and logged. Call after the
   * subscriber has stopped, so nothing new arrives.
   */
  async flush(timeoutMs: number): Promise<void> {
    this.flushing = true;
    for (const lane of this.lanes) this.start(lane);
    if (this.heldMessages > 0) {
      const idle = new Promise<void>((resolve) => (this.onIdle = resolve));
      let deadline: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (deadline = setTimeout(resolve, timeoutMs)));
      await Promise.race([idle, timedOut]);
      clearTimeout(deadline);
    }
    if (this.heldMessages > 0) {
      this.abort.abort();
      const unsent = this.heldMessages;
      for (const lane of this.lanes) {
        clearTimeout(lane.windowTimer);
        lane.waiting.clear();
        lane.waitingSize = 0;
        lane.formed = [];
      }
      this.dropped.shutdown += unsent;
      this.heldMessages = 0;
      this.heldBytes = 0;
      this.log.error(
        `shutdown: dropped ${unsent} messages not delivered within ${timeoutMs} ms (worker ${this.workerState})`,
      );
      await this.pool.destroy();
    } else {
      await this.pool.close();
    }
  }

  private schedule(lane: Lane): void {
    if (lane.running) return;
    const full = lane.waiting.length >= this.config.batchMaxMessages || lane.waitingSize >= this.config.batchMaxBytes;
    if (full || this.flushing) {
      this.start(lane);
    } else if (lane.windowTimer === undefined) {
      lane.windowTimer = setTimeout(() => this.start(lane), this.config.batchWindowMs);
    }
  }

  private start(lane: Lane): void {
    clearTimeout(lane.windowTimer);
    lane.windowTimer = undefined;
    if (lane.running || (lane.waiting.length === 0 && lane.formed.length === 0)) return;
    lane.running = true;
    this.run(lane).finally(() => {
      lane.running = false;
      if (this.onIdle && this.heldMessages === 0) this.onIdle();
    });
  }

  private async run(lane: Lane): Promise<void> {
    try {
      for (let batch = this.nextBatch(lane); batch; batch = this.nextBatch(lane)) {
        await this.deliver(lane, batch);
      }
    } catch (error) {
      // Only the shutdown deadline interrupts a lane; flush() accounts for what it held.
      if (!this.abort.signal.aborted) throw error;
    }
  }

  private nextBatch(lane: Lane): Batch | undefined {
    if (lane.formed.length > 0) return lane.formed[0];
    if (lane.waiting.length === 0) return undefined;
    const messages: Held[] = [];
    let size = 0;
    while (messages.length < this.config.batchMaxMessages) {
      const next = lane.waiting.peek();
      if (!next || (messages.length > 0 && size + next.size > this.config.batchMaxBytes)) break;
      lane.waiting.shift();
      size += next.size;
      messages.push(next);
    }
    lane.waitingSize -= size;
    const id = `${this.batchIdPrefix}.${(this.batchCount++).toString(36)}`;
    const batch = { id, messages, body: batchBody(id, messages) };
    lane.formed.push(batch);
    return batch;
  }

  /** Sends `batch` until it is settled; it stays first in `lane.formed` until then. */
  private async deliver(lane: Lane, batch: Batch): Promise<void> {
    for (let failures = 0; ; failures++) {
      const outcome = await this.post(batch);
      switch (outcome.kind) {
        case "accepted":
          this.requests.accepted++;
          this.forwarded += batch.messages.length - outcome.refused;
          if (outcome.refused > 0) this.refused(outcome.refused, "messages as unusable (its log says which and why)");
          this.setWorkerState("ok", "");
          this.settle(lane, batch);
          return;
        case "rejected":
          this.requests.rejected++;
          this.refused(batch.messages.length, `a whole batch as malformed (400${outcome.detail})`);
          this.settle(lane, batch);
          return;
        case "tooLarge":
          this.requests.tooLarge++;
          this.splitOrDrop(lane, batch, outcome.detail);
          return;
        case "misconfigured":
          this.requests.misconfigured++;
          this.setWorkerState("misconfigured", outcome.detail);
          await sleep(this.config.misconfiguredRetryMs, undefined, { signal: this.abort.signal });
          break;
        case "unreachable":
        case "failing": {
          this.requests.failed++;
          this.setWorkerState(outcome.kind, outcome.detail);
          const ceiling = Math.min(this.config.retryMaxMs, this.config.retryBaseMs * 2 ** Math.min(failures, 30));
          await sleep(ceiling / 2 + Math.random() * (ceiling / 2), undefined, { signal: this.abort.signal });
          break;
        }
      }
    }
  }

  private async post(batch: Batch): Promise<Outcome> {
    let status: number;
    let text: string;
    try {
      // Signed per attempt: the worker refuses timestamps older than its replay window.
      const signed = { method: "POST", path: this.signedPath, body: batch.body };
      const headers = { "content-type": "application/json", ...(await signatureHeaders(this.config.secret, signed)) };
      const response = await this.pool.request({
        path: this.publishPath,
        method: "POST",
        headers,
        body: batch.body,
        signal: this.abort.signal,
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      if (this.abort.signal.aborted) throw error;
      const { code, message } = error as { code?: string; message?: string };
      return { kind: "unreachable", detail: code ?? message ?? String(error) };
    }
    if (status >= 200 && status < 300) return { kind: "accepted", refused: refusedCount(text) };
    const detail = snippet(text);
    switch (status) {
      case 400:
        return { kind: "rejected", detail };
      case 413:
        return { kind: "tooLarge", detail };
      case 401:
        return {
          kind: "misconfigured",
          detail:
            `the worker refused the signature (401${detail}): BRIDGE_SECRET must equal the worker's BRIDGE_SECRET ` +
            `and this machine's clock must be right within 5 minutes`,
        };
      case 403:
        return {
          kind: "misconfigured",
          detail: `the worker answered 403${detail}: check that ECHO_URL reaches the worker and nothing in front of it (Access, WAF) blocks the bridge`,
        };
      case 404:
        return {
          kind: "misconfigured",
          detail:
            `the worker answered 404 for ${this.publishPath}${detail}: APP_ID "${this.config.appId}" must be an appId ` +
            `of the worker's CLIENTS, and ECHO_URL must point at the worker`,
        };
      default:
        return { kind: "failing", detail: `HTTP ${status}${detail}` };
    }
  }

  /** Messages the worker will never take: dropped, not retried. */
  private refused(count: number, what: string): void {
    this.dropped.rejected += count;
    if (isPowerOfTen(++this.refusals)) {
      this.log.error(`the worker refused ${count} ${what}; dropped (${this.refusals} refusals so far)`);
    }
  }

  private settle(lane: Lane, batch: Batch): void {
    lane.formed.shift();
    this.heldMessages -= batch.messages.length;
    for (const held of batch.messages) this.heldBytes -= held.size;
    // Half empty, not merely below the bound, so a sustained overload logs one episode, not one per batch.
    if (
      this.overflowEpisode > 0 &&
      this.heldMessages <= this.config.bufferMaxMessages / 2 &&
      this.heldBytes <= this.config.bufferMaxBytes / 2
    ) {
      this.log.warn(`buffer half empty again; ${this.overflowEpisode} oldest messages were dropped while it was full`);
      this.overflowEpisode = 0;
    }
  }

  /** 413: halves go back in place of the batch, in order; a lone message too large is dropped. */
  private splitOrDrop(lane: Lane, batch: Batch, detail: string): void {
    const count = batch.messages.length;
    if (count === 1) {
      this.dropped.tooLargeForWorker++;
      this.log.error(
        `the worker refused a single message as too large (413${detail}); dropped it. ` +
          `Lower MAX_MESSAGE_BYTES to what the worker accepts so such messages are refused on arrival.`,
      );
      this.settle(lane, batch);
      return;
    }
    if (isPowerOfTen(this.requests.tooLarge)) {
      this.log.warn(`the worker refused a batch of ${count} messages as too large (413); splitting. Lower BRIDGE_BATCH_MAX_BYTES.`);
    }
    const half = Math.ceil(count / 2);
    const halves = [batch.messages.slice(0, half), batch.messages.slice(half)].map((messages, i) => {
      const id = `${batch.id}-${i + 1}`;
      return { id, messages, body: batchBody(id, messages) };
    });
    lane.formed.splice(0, 1, ...halves);
  }

  /** Drops the oldest messages not yet in a batch until the buffer is within its bounds. */
  private dropOldest(): void {
    const { bufferMaxMessages, bufferMaxBytes } = this.config;
    while (this.heldMessages > bufferMaxMessages || this.heldBytes > bufferMaxBytes) {
      let oldest: Lane | undefined;
      for (const lane of this.lanes) {
        const head = lane.waiting.peek();
        if (head && (!oldest || head.seq < oldest.waiting.peek()!.seq)) oldest = lane;
      }
      // Batches being sent are never cut: their ids promise the same content on retry.
      if (!oldest) return;
      const held = oldest.waiting.shift()!;
      oldest.waitingSize -= held.size;
      this.heldMessages--;
      this.heldBytes -= held.size;
      this.dropped.overflow++;
      if (this.overflowEpisode++ === 0) {
        this.log.error(
          `buffer full (${bufferMaxMessages} messages / ${bufferMaxBytes} bytes) while the worker is ${this.workerState}: ` +
            `dropping the oldest messages (see echo_bridge_messages_dropped_total{reason="overflow"})`,
        );
      }
    }
  }

  private setWorkerState(state: WorkerState, detail: string): void {
    if (state === this.workerState) return;
    const previous = this.workerState;
    const seconds = ((Date.now() - this.workerStateSince) / 1000).toFixed(1);
    this.workerState = state;
    this.workerStateSince = Date.now();
    switch (state) {
      case "ok":
        if (previous !== "unknown") {
          this.log.info(`worker accepts publishes again after ${seconds} s ${previous}; ${this.heldMessages} messages buffered`);
        }
        break;
      case "unreachable":
        this.log.warn(`cannot reach the worker at ${this.publishUrl} (${detail}); buffering and retrying with backoff`);
        break;
      case "failing":
        this.log.warn(`the worker failed a publish (${detail}); buffering and retrying with backoff`);
        break;
      case "misconfigured":
        this.log.error(`${detail}. Buffering; retrying every ${this.config.misconfiguredRetryMs / 1000} s until fixed.`);
        break;
    }
  }
}
