/**
 * Per-connection limits a client cannot talk its way past: token buckets for
 * rates (subscribes, whispers by count and by bytes) and a fixed number of slots
 * for concurrent work (auth calls to Laravel), with a cancellable wait for a slot.
 */

/** `capacity` tokens at most, refilled at `perSecond`; a request for more than is left is refused whole. */
export class TokenBucket {
  private readonly capacity: number;
  private readonly perSecond: number;
  private tokens: number;
  private refilledAt = Date.now();

  constructor(capacity: number, perSecond: number) {
    this.capacity = capacity;
    this.perSecond = perSecond;
    this.tokens = capacity;
  }

  take(amount = 1): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.refilledAt) / 1000) * this.perSecond);
    this.refilledAt = now;
    if (this.tokens < amount) return false;
    this.tokens -= amount;
    return true;
  }
}

/** At most `size` tasks run at once; the others wait in order, and leave the line when their signal aborts. */
export class Slots {
  private readonly size: number;
  private busy = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.size = size;
  }

  /** `task`'s result, or null without running it when `signal` aborted before a slot was free. */
  async run<T>(signal: AbortSignal, task: () => Promise<T>): Promise<T | null> {
    if (signal.aborted) return null;
    if (this.busy < this.size) this.busy++;
    else if (!(await this.wait(signal))) return null;
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  /** Resolves true once a finishing task hands over its slot, false if the signal aborts first. */
  private wait(signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const handOver = () => {
        signal.removeEventListener("abort", leave);
        resolve(true);
      };
      const leave = () => {
        this.waiting.splice(this.waiting.indexOf(handOver), 1);
        resolve(false);
      };
      this.waiting.push(handOver);
      signal.addEventListener("abort", leave, { once: true });
    });
  }

  /** The slot goes straight to the next in line, so a newcomer cannot take it in between. */
  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.busy--;
  }
}

const encoder = new TextEncoder();

/** UTF-8 size of a text, what a byte limit counts. */
export function utf8Length(text: string): number {
  return encoder.encode(text).byteLength;
}
