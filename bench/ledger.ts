/**
 * Book-keeping of what every subscriber received: each message carries a
 * per-channel sequence number and its publish time, so one bitmap per subscriber
 * tells loss, duplicates and reordering, and the publish time gives latency.
 */
import { LatencyHistogram } from "./metrics.ts";

/** Laravel's default broadcast name for `App\Events\Bench`. */
export const BENCH_EVENT = "App\\Events\\Bench";

export class Ledger {
  /** Every measured delivery, duplicates included. */
  delivered = 0;
  unique = 0;
  duplicates = 0;
  /** Deliveries whose sequence number is lower than one the subscriber already had. */
  orderViolations = 0;
  /** Bench events that arrived for a channel the subscriber is not on, or could not be read. */
  misrouted = 0;
  /** Deliveries of probe (unnumbered) messages: they pace the warm-up. */
  probes = 0;
  /** Connections that closed while they should have been open. */
  unexpectedCloses = 0;
  readonly latency = new LatencyHistogram();
  lastDeliveryAt = 0;
}

/** The receiving side of one subscription (one client on one channel). */
export class Receiver {
  readonly ledger: Ledger;
  readonly channel: string;
  /** True once a probe published after subscribing has arrived: the subscription is live. */
  ready = false;
  #seen = new Uint8Array(1024);
  #maxSeq = -1;

  constructor(ledger: Ledger, channel: string) {
    this.ledger = ledger;
    this.channel = channel;
  }

  probe(): void {
    this.ready = true;
    this.ledger.probes++;
  }

  deliver(seq: number, sentAt: number): void {
    const now = performance.now();
    const ledger = this.ledger;
    ledger.delivered++;
    ledger.lastDeliveryAt = now;
    if (seq >= this.#seen.length) {
      const grown = new Uint8Array(Math.max(seq + 1, this.#seen.length * 2));
      grown.set(this.#seen);
      this.#seen = grown;
    }
    if (this.#seen[seq]) {
      ledger.duplicates++;
      return;
    }
    this.#seen[seq] = 1;
    ledger.unique++;
    if (seq < this.#maxSeq) ledger.orderViolations++;
    else this.#maxSeq = seq;
    ledger.latency.record(now - sentAt);
  }

  /** The slow path for clients that hand over parsed event arguments. */
  event(event: string, channel: unknown, data: unknown): void {
    if (event !== BENCH_EVENT) return;
    const fields = data as { seq?: unknown; sentAt?: unknown; probe?: unknown } | null;
    if (channel !== this.channel || typeof fields !== "object" || fields === null) {
      this.ledger.misrouted++;
    } else if (fields.probe === true) {
      this.probe();
    } else if (typeof fields.seq === "number" && typeof fields.sentAt === "number") {
      this.deliver(fields.seq, fields.sentAt);
    } else {
      this.ledger.misrouted++;
    }
  }
}
