/**
 * Upstash subscriber Durable Object: one per app in Upstash mode. It holds
 * `PSUBSCRIBE <prefix>*` on the app's Upstash Redis through the REST API (a
 * server-sent events stream) and feeds every publish into the same path as the
 * bridge, with no process next to Redis.
 *
 * It is awake by design: an open outgoing stream keeps a Durable Object from
 * hibernating. The alarm is its only scheduler: it retries a lost stream with a
 * backoff of at most a second, times out an attempt that gets no confirmation, and
 * while connected fires every WATCHDOG_MS, so an evicted or restarted object (which
 * forgets its stream but not its alarm) subscribes again on its own.
 *
 * Redis pub/sub keeps nothing: what is published while the stream is down is lost.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig, type Env, type UpstashConfig } from "../worker/config.ts";
import { createLogger, type Logger } from "../worker/log.ts";
import { fanOut } from "../worker/publish/fanout.ts";
import type { PublishMessage } from "../worker/publish/message.ts";
import { prefixPattern } from "../worker/publish/redis-prefix.ts";
import { MAX_MESSAGE_BYTES, publishMessageOf } from "../worker/upstash/message.ts";
import { dataField, LineSplitter, parseReply } from "../worker/upstash/stream.ts";

export type UpstashState = "stopped" | "connecting" | "connected" | "reconnecting";

/** What `/stats` shows under `upstash`. */
export interface UpstashStatus {
  app: string;
  state: UpstashState;
  /** When the state last changed (ISO 8601). */
  since: string;
  /** Publishes read from the stream, good and bad. */
  messages: number;
  /** Publishes handed to the channels. */
  published: number;
  /** Not JSON, not shaped like Laravel's payload, on an invalid channel, or too large: counted, logged and skipped. */
  bad_messages: number;
  /** Good publishes given up on: the pending buffer was full, or the channels kept failing. */
  dropped: number;
  /** Times the stream was subscribed again after being lost. */
  reconnects: number;
  last_error: { at: string; message: string } | null;
}

/** While connected, the alarm fires this often: a lost object comes back within this long. */
const WATCHDOG_MS = 10_000;
/** An attempt without Upstash's `psubscribe` confirmation within this long is abandoned. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Retries back off from this... */
const FIRST_RETRY_MS = 100;
/** ...to at most this, so a stream that is back is resubscribed within about a second. */
const MAX_RETRY_MS = 1000;
/** A refused token does not fix itself (a new one comes with a deploy, which restarts the object): retry slowly. */
const REFUSED_RETRY_MS = 60_000;
/** A `data:` line holds a reply header (type, pattern, channel) before the message. */
const MAX_LINE_CHARS = MAX_MESSAGE_BYTES + 1024;
/** Publishes waiting for the channels while a publish is in flight... */
const MAX_PENDING_MESSAGES = 10_000;
/** ...and their size in UTF-16 code units: a slow channel must not exhaust the object's memory. */
const MAX_PENDING_CHARS = 16 * 1024 * 1024;
/** One publish call (one RPC per channel) carries at most this many messages. */
const MAX_BATCH_MESSAGES = 500;
/** A failed publish is retried this many times, with the same batch id so no channel gets it twice. */
const PUBLISH_ATTEMPTS = 3;
/** Channels remember a batch id this long: longer than all attempts of one batch take. */
const BATCH_MEMORY_MS = 60_000;

/** Upstash answered the subscribe request with an error status. */
class UpstashRefusal extends Error {
  readonly status: number;

  constructor(status: number, body: string) {
    super(`Upstash answered ${status}${body ? `: ${body.slice(0, 200)}` : ""}`);
    this.status = status;
  }
}

interface Pending {
  message: PublishMessage;
  size: number;
}

export class UpstashSubscriberObject extends DurableObject<Env> {
  private state: UpstashState = "stopped";
  private since = Date.now();
  /** The current attempt's stream; aborting it ends that attempt without counting a failure. */
  private stream: AbortController | null = null;
  private attemptStartedAt = 0;
  /** Failed attempts since the last confirmed subscription: the backoff's exponent. */
  private failures = 0;
  private counters = { messages: 0, published: 0, bad: 0, dropped: 0, reconnects: 0 };
  private lastError: UpstashStatus["last_error"] = null;
  private readonly pending: Pending[] = [];
  private pendingChars = 0;
  private publishing = false;

  /** Starts the subscription unless it runs already; answers its status either way. */
  async ensureRunning(): Promise<UpstashStatus | null> {
    const upstash = readConfig(this.env).upstash;
    if (!upstash) return null;
    if (this.state === "stopped") await this.subscribe(upstash);
    return this.status(upstash);
  }

  override async alarm(): Promise<void> {
    const upstash = readConfig(this.env).upstash;
    if (!upstash) return; // Upstash mode was switched off: let the object go.
    const now = Date.now();
    if (this.state === "connected") {
      await this.ctx.storage.setAlarm(now + WATCHDOG_MS);
      return;
    }
    if (this.stream && now - this.attemptStartedAt < CONNECT_TIMEOUT_MS) {
      await this.ctx.storage.setAlarm(this.attemptStartedAt + CONNECT_TIMEOUT_MS);
      return;
    }
    if (this.stream) this.failed(upstash, new Error(`no psubscribe confirmation within ${CONNECT_TIMEOUT_MS / 1000} s`));
    await this.subscribe(upstash);
  }

  private status(upstash: UpstashConfig): UpstashStatus {
    const { messages, published, bad, dropped, reconnects } = this.counters;
    return {
      app: upstash.appId,
      state: this.state,
      since: new Date(this.since).toISOString(),
      messages,
      published,
      bad_messages: bad,
      dropped,
      reconnects,
      last_error: this.lastError,
    };
  }

  private log(): Logger {
    return createLogger(readConfig(this.env).devMode);
  }

  private setState(state: UpstashState): void {
    this.state = state;
    this.since = Date.now();
  }

  /** Opens a new stream (ending any previous one); the alarm watches for its confirmation. */
  private async subscribe(upstash: UpstashConfig): Promise<void> {
    this.stream?.abort();
    const stream = new AbortController();
    this.stream = stream;
    this.attemptStartedAt = Date.now();
    if (this.state === "stopped") this.setState("connecting");
    await this.ctx.storage.setAlarm(this.attemptStartedAt + CONNECT_TIMEOUT_MS);
    void this.read(upstash, stream);
  }

  /** One attempt: subscribe, then read replies until the stream ends or fails. */
  private async read(upstash: UpstashConfig, stream: AbortController): Promise<void> {
    const pattern = prefixPattern(upstash.prefix);
    try {
      const response = await fetch(`${upstash.url}/psubscribe/${encodeURIComponent(pattern)}`, {
        method: "POST",
        headers: { authorization: `Bearer ${upstash.token}`, accept: "text/event-stream" },
        signal: stream.signal,
      });
      if (!response.ok || !response.body) {
        const body = await response.text().catch(() => "");
        throw new UpstashRefusal(response.status, body);
      }
      const lines = new LineSplitter(MAX_LINE_CHARS);
      const onLine = (line: string) => {
        const data = dataField(line);
        if (data !== null) this.reply(upstash, pattern, data);
      };
      const onOversized = () => {
        this.counters.messages++;
        this.badMessage(upstash, null, `a stream line over ${MAX_LINE_CHARS} characters`);
      };
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        lines.push(value, onLine, onOversized);
        // Everything one read delivered goes out as one batch (or joins the one waiting).
        void this.publishPending(upstash);
      }
      throw new Error("Upstash ended the stream");
    } catch (error) {
      if (stream !== this.stream) return; // replaced or abandoned on purpose
      this.failed(upstash, error);
      const refused = error instanceof UpstashRefusal && (error.status === 401 || error.status === 403);
      const delay = refused ? REFUSED_RETRY_MS : Math.min(FIRST_RETRY_MS * 2 ** (this.failures - 1), MAX_RETRY_MS);
      await this.ctx.storage.setAlarm(Date.now() + delay);
    }
  }

  private reply(upstash: UpstashConfig, pattern: string, data: string): void {
    const reply = parseReply(data, pattern);
    if (reply.type === "pmessage") {
      this.counters.messages++;
      const channel = reply.channel.slice(upstash.prefix.length);
      const message = publishMessageOf(channel, reply.message);
      if ("problem" in message) this.badMessage(upstash, channel, message.problem, reply.message);
      else this.enqueue(upstash, message, reply.message.length);
    } else if (reply.type === "psubscribe") {
      this.subscribed(upstash, pattern);
    } else {
      // Not ours to read (a keep-alive, a reply type of a later API version): worth a look only when debugging.
      this.log().debug("upstash_unexpected_reply", { appId: upstash.appId, reply: data.slice(0, 80) });
    }
  }

  private subscribed(upstash: UpstashConfig, pattern: string): void {
    const { state, since } = this;
    this.setState("connected");
    this.failures = 0;
    void this.ctx.storage.setAlarm(Date.now() + WATCHDOG_MS);
    if (state === "reconnecting") {
      this.counters.reconnects++;
      this.log().warn("upstash_resubscribed", {
        appId: upstash.appId,
        pattern,
        gapSeconds: (Date.now() - since) / 1000,
        note: "anything published in the gap was not received (Redis pub/sub keeps nothing)",
      });
    } else {
      this.log().debug("upstash_subscribed", { appId: upstash.appId, pattern });
    }
  }

  private failed(upstash: UpstashConfig, error: unknown): void {
    this.stream?.abort();
    this.stream = null;
    this.failures++;
    const message = error instanceof Error ? error.message : String(error);
    this.lastError = { at: new Date().toISOString(), message };
    if (this.state !== "reconnecting") {
      this.log().warn(this.state === "connected" ? "upstash_stream_lost" : "upstash_connect_failed", { appId: upstash.appId, error: message });
      this.setState("reconnecting");
    } else {
      this.log().debug("upstash_retry_failed", { appId: upstash.appId, failures: this.failures, error: message });
    }
  }

  private badMessage(upstash: UpstashConfig, channel: string | null, problem: string, payload?: string): void {
    this.counters.bad++;
    this.log().warn("upstash_message_skipped", {
      appId: upstash.appId,
      channel,
      problem,
      sample: payload === undefined ? undefined : payload.slice(0, 80),
      skipped: this.counters.bad,
    });
  }

  private enqueue(upstash: UpstashConfig, message: PublishMessage, size: number): void {
    if (this.pending.length >= MAX_PENDING_MESSAGES || this.pendingChars + size > MAX_PENDING_CHARS) {
      this.counters.dropped++;
      this.log().warn("upstash_message_dropped", { appId: upstash.appId, channel: message.channel, reason: "pending buffer full" });
      return;
    }
    this.pending.push({ message, size });
    this.pendingChars += size;
  }

  /**
   * Publishes what is pending, one batch at a time: a batch is published (or given
   * up on) before the next starts, so each channel gets its messages in stream order.
   */
  private async publishPending(upstash: UpstashConfig): Promise<void> {
    if (this.publishing) return;
    this.publishing = true;
    try {
      while (this.pending.length > 0) {
        const batch = this.pending.splice(0, MAX_BATCH_MESSAGES);
        for (const { size } of batch) this.pendingChars -= size;
        await this.publishBatch(upstash, batch.map((p) => p.message));
      }
    } finally {
      this.publishing = false;
    }
  }

  private async publishBatch(upstash: UpstashConfig, messages: PublishMessage[]): Promise<void> {
    const stamp = { id: crypto.randomUUID(), rememberUntil: Date.now() + BATCH_MEMORY_MS };
    for (let attempt = 1; ; attempt++) {
      try {
        await fanOut(this.env, upstash.appId, messages, stamp);
        this.counters.published += messages.length;
        return;
      } catch (error) {
        if (attempt === PUBLISH_ATTEMPTS) {
          this.counters.dropped += messages.length;
          this.log().warn("upstash_publish_failed", { appId: upstash.appId, messages: messages.length, error: String(error) });
          return;
        }
        await scheduler.wait(FIRST_RETRY_MS * 2 ** (attempt - 1));
      }
    }
  }
}
