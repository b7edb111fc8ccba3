/**
 * Channel Durable Object: one per (app, channel). It records each subscription with
 * the address its socket is served from (a connection host, or a polling session
 * object) and delivers every batch once per address over RPC, not once per socket:
 * the address fans the frames out to its local sockets (worker/channels/delivery.ts).
 * Subscriptions live in this object's SQLite storage, so it can be evicted between
 * calls without losing anyone; it holds no sockets and no timers, so it sleeps.
 *
 * Presence is derived from the subscriptions: a user joins with their first socket
 * and leaves after their last, with a short grace so a reconnecting tab does not
 * make the others see leaving/joining.
 *
 * Connection state recovery: while any subscriber can recover (a Socket.IO v4 session
 * with a pid), every frame the channel sends is numbered and kept in its history
 * (worker/channels/history.ts). A recoverable subscription whose connection is lost
 * is kept, presence included, for RECOVERY_WINDOW; the reconnected client takes it up
 * with `recover` and gets every frame after the last one it was sent.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig, type Env } from "../worker/config.ts";
import type { PresenceMember } from "../worker/channels/auth.ts";
import type {
  ChannelDelivery,
  ChannelSubscriptions,
  DeliveryReceipt,
  DeliveryTarget,
  JoinRequest,
  JoinResult,
  LeaveReason,
  RecoverRequest,
  RecoverResult,
  SubscriberAddress,
  Whisper,
} from "../worker/channels/delivery.ts";
import { ChannelHistory } from "../worker/channels/history.ts";
import { channelKind, isValidChannelName } from "../worker/channels/names.ts";
import { eventPacket } from "../worker/protocol/socketio.ts";
import { createLogger } from "../worker/log.ts";
import { utf8Length } from "../worker/session/limits.ts";
import { ChannelWebhooks } from "../worker/webhooks/producer.ts";

/** A message to broadcast, as Laravel publishes it; `socket` is the toOthers exclusion. */
export interface ChannelMessage {
  event: string;
  data: unknown;
  socket?: string | null;
}

/** A bridge batch's id, and until when a replay of its signed request could still arrive. */
export interface BatchStamp {
  id: string;
  rememberUntil: number;
}

export interface ChannelInfo {
  subscription_count: number;
  occupied: boolean;
  user_count?: number;
  /** Invocations this object has served since it was last loaded (fan-out cost checks). */
  invocations: number;
}

/** One subscribed socket (a row of the `subscribers` table). */
interface Subscriber {
  socketId: string;
  at: SubscriberAddress;
  member: PresenceMember | null;
  /** The session's private id when it can recover. */
  pid: string | null;
  /** When its connection was lost, while it is kept for a recovery; null while connected. */
  lostAt: number | null;
  /**
   * When it was recorded in this object's life (a counter, not stored): a delivery
   * receipt only drops subscriptions recorded before that delivery started, never a
   * join that raced it.
   */
  recorded: number;
}

interface PendingLeave {
  member: PresenceMember;
  due: number;
}

/**
 * Occupancy changes reach the app object at once (the HTTP API shows a subscribe
 * or a disconnect as laravel-echo-server does); message counters within this long,
 * so a quiet channel's publish rarely costs an extra alarm and report.
 */
const COUNTER_REPORT_DELAY_MS = 5000;
/** A report that failed is retried from an alarm this much later. */
const REPORT_RETRY_MS = 5000;
const LEAVE_PREFIX = "leave:";
/** Storage key of a user's pending leave; the part after the prefix is the user key members() uses. */
const leaveKey = (userId: string | number) => LEAVE_PREFIX + JSON.stringify(userId);
/** One key per address, whatever its incarnation: an address holds subscriptions of one incarnation at a time. */
const addressKey = (at: SubscriberAddress) => `${at.kind}:${at.name}`;
const sameAddress = (a: SubscriberAddress, b: SubscriberAddress) =>
  a.kind === b.kind && a.name === b.name && a.incarnation === b.incarnation;

export class ChannelObject extends DurableObject<Env> implements ChannelSubscriptions {
  /** By socket id, in join order; loaded from storage on the first call after a wake. */
  private loaded: Map<string, Subscriber> | null = null;
  private recordings = 0;
  /** Per address key, the last delivery on its way there: the next one starts after it, so each address sees batches in order. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly targets = new Map<string, DeliveryTarget>();
  private batchTableReady = false;
  private counters = { received: 0, delivered: 0 };
  private invocations = 0;
  /** When the pending alarm fires; undefined until read from storage after a wake-up. */
  private alarmAt: number | null | undefined;
  private nameStored = false;
  /** Reports to the app object, one at a time, in order; `reportQueued`: one is waiting to start and will read the latest state. */
  private reports: Promise<void> = Promise.resolve();
  private reportQueued = false;
  private readonly webhooks = new ChannelWebhooks(this.env, this.ctx.storage.kv);
  private historyStore: ChannelHistory | null = null;
  /** Whether any subscription has a pid; null when the subscriptions changed since it was worked out. */
  private anyRecoverable: boolean | null = null;

  /**
   * Records a subscription. A user's first socket makes the others see
   * `presence:joining`; the socket itself gets `presence:subscribed` in the result.
   * A resumed join moves the socket's subscription from its old address silently,
   * and returns once every delivery already on its way there has finished.
   */
  async join({ appId, channel, socketId, member, at, resumed, pid }: JoinRequest): Promise<JoinResult> {
    this.invocations++;
    if (!isValidChannelName(channel) || typeof socketId !== "string" || typeof appId !== "string") {
      throw new Error("join: invalid channel, socket or app");
    }
    this.rememberName(appId, channel);
    this.forgetOtherIncarnations(at);
    const subscribers = this.subscribers();
    const previous = subscribers.get(socketId);
    // A join the socket's old transport sent before it moved (an upgrade) must not take it back.
    if (previous && previous.lostAt === null && !resumed && addressKey(previous.at) !== addressKey(at)) return { frames: [] };
    const alreadyPresent = member !== null && this.isPresent(member.user_id);
    const returning = member !== null && this.cancelPendingLeave(member.user_id);
    this.record({ socketId, at, member, pid: pid ?? null, lostAt: null, recorded: ++this.recordings });
    this.webhooks.occupancy(appId, channel, () => this.isOccupied());
    const frames: string[] = [];
    if (member) {
      if (!resumed) frames.push(eventPacket("presence:subscribed", channel, this.members()));
      if (!alreadyPresent && !returning) {
        this.broadcast(eventPacket("presence:joining", channel, member), socketId);
        this.webhooks.memberAdded(appId, channel, member);
      }
    }
    void this.report();
    // The new owner collects what reached the old address before taking over (polling → host upgrade).
    if (resumed && previous) await this.deliveriesDone(previous.at, at);
    return { frames, ...(pid && { position: this.history().lastSeq() }) };
  }

  /**
   * A reconnected client takes up the subscription its lost connection left here:
   * the subscription moves to the new address without presence events, and the
   * result holds every frame after `position` the socket was not excluded from.
   */
  async recover({ appId, channel, socketId, pid, position, at }: RecoverRequest): Promise<RecoverResult | null> {
    this.invocations++;
    if (!isValidChannelName(channel) || typeof socketId !== "string" || typeof pid !== "string" || !Number.isSafeInteger(position)) {
      throw new Error("recover: invalid channel, socket, pid or position");
    }
    const previous = this.subscribers().get(socketId);
    if (!previous || previous.pid !== pid || readConfig(this.env).recoveryWindow === 0) return null;
    this.rememberName(appId, channel);
    this.forgetOtherIncarnations(at);
    const missed = this.history().since(position, socketId);
    if (missed === null) return null;
    this.record({ ...previous, at, lostAt: null, recorded: ++this.recordings });
    void this.report();
    // Deliveries on their way to the old address are in the history already.
    await this.deliveriesDone(previous.at, at);
    return { member: previous.member, ...missed, position: this.history().lastSeq() };
  }

  /** Only from the address the socket is subscribed from (see LeaveReason). */
  async leave(at: SubscriberAddress, socketId: string, reason: LeaveReason): Promise<void> {
    this.invocations++;
    const subscriber = this.subscribers().get(socketId);
    if (!subscriber || subscriber.lostAt !== null || !sameAddress(subscriber.at, at)) return;
    await this.forget([subscriber], reason);
  }

  /**
   * A whisper goes to every other subscriber. The rules are checked here again
   * rather than trusted to the session: only a socket subscribed from `at`, only on
   * private and presence channels, only `client-*` events, and no larger than a
   * connection may whisper in a second.
   */
  async whisper(at: SubscriberAddress, socketId: string, whisper: Whisper): Promise<void> {
    this.invocations++;
    const subscriber = this.subscribers().get(socketId);
    const channel = this.channelName();
    if (!subscriber || !sameAddress(subscriber.at, at) || !channel) return;
    const refuse = (reason: string) =>
      createLogger(readConfig(this.env).devMode).warn("whisper_refused", { channel, socketId, reason });
    if (channelKind(channel) === "public") return refuse("public channel");
    if (typeof whisper?.event !== "string" || !whisper.event.startsWith("client-")) return refuse("not a client-* event");
    if (utf8Length(JSON.stringify(whisper)) > readConfig(this.env).whisperBytes) return refuse("larger than WHISPER_BYTES");
    this.broadcast(eventPacket(whisper.event, channel, whisper.data), socketId);
    this.webhooks.clientEvent({ appId: this.ctx.storage.kv.get<string>("app")!, channel, socketId, member: subscriber.member }, whisper.event, whisper.data);
  }

  /** Delivers a batch once per subscriber address: each frame is encoded once; toOthers is applied by the address. */
  async publish(appId: string, channel: string, messages: ChannelMessage[], batch?: BatchStamp): Promise<{ delivered: number; duplicate: boolean }> {
    this.invocations++;
    if (batch !== undefined && this.isDuplicateBatch(batch)) return { delivered: 0, duplicate: true };
    this.rememberName(appId, channel);
    const delivered = await this.deliverToAll({
      channel,
      frames: messages.map((m) => eventPacket(m.event, channel, m.data)),
      excluded: messages.map((m) => m.socket ?? null),
    });
    this.counters.received += messages.length;
    this.counters.delivered += delivered;
    await this.scheduleAlarm(Date.now() + COUNTER_REPORT_DELAY_MS);
    return { delivered, duplicate: false };
  }

  async info(): Promise<ChannelInfo> {
    this.invocations++;
    // Never answer ahead of the app's directory: /channels/:channel and /channels agree.
    await this.reports;
    const count = this.connectedCount();
    const info: ChannelInfo = { subscription_count: count, occupied: count > 0, invocations: this.invocations };
    const channel = this.channelName();
    if (channel && channelKind(channel) === "presence") info.user_count = this.members().length;
    return info;
  }

  async users(): Promise<{ id: string | number; user_info: unknown }[]> {
    this.invocations++;
    return this.members().map((m) => ({ id: m.user_id, user_info: m.user_info }));
  }

  /** Due presence leaves, then one occupancy/counter report to the app object. */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    const now = Date.now();
    const channel = this.channelName();
    const appId = this.ctx.storage.kv.get<string>("app");
    let nextLeave: number | null = null;
    for (const [key, pending] of this.ctx.storage.kv.list<PendingLeave>({ prefix: LEAVE_PREFIX })) {
      if (pending.due > now) {
        if (nextLeave === null || pending.due < nextLeave) nextLeave = pending.due;
        continue;
      }
      this.ctx.storage.kv.delete(key);
      if (channel && !this.isPresent(pending.member.user_id)) {
        this.broadcast(eventPacket("presence:leaving", channel, pending.member));
        if (appId) this.webhooks.memberRemoved(appId, channel, pending.member);
      }
    }
    const window = readConfig(this.env).recoveryWindow;
    const expired: Subscriber[] = [];
    for (const subscriber of this.subscribers().values()) {
      if (subscriber.lostAt === null) continue;
      const due = subscriber.lostAt + window;
      if (due <= now) expired.push(subscriber);
      else if (nextLeave === null || due < nextLeave) nextLeave = due;
    }
    // The window was their grace: members no longer present leave now. forget() reports, counters included.
    if (expired.length > 0) await this.forget(expired, "unsubscribe");
    if (appId && channel) this.webhooks.occupancy(appId, channel, () => this.isOccupied());
    if (expired.length === 0) await this.report();
    if (nextLeave !== null) await this.scheduleAlarm(nextLeave);
  }

  /** Sends a delivery to every address with a socket it has a frame for; resolves with the frames delivered. */
  private async deliverToAll(unnumbered: Omit<ChannelDelivery, "firstSeq">): Promise<number> {
    const delivery: ChannelDelivery = {
      ...unnumbered,
      firstSeq: this.keepsHistory() ? this.history().append(unnumbered.frames, unnumbered.excluded, Date.now()) : null,
    };
    const addresses = new Map<string, SubscriberAddress>();
    for (const { socketId, at, lostAt } of this.subscribers().values()) {
      if (lostAt !== null) continue;
      const key = addressKey(at);
      if (addresses.has(key)) continue;
      // An address whose only sockets are excluded from every frame (a whisper's sender alone on its host) costs no request.
      if (delivery.excluded.some((excluded) => excluded !== socketId)) addresses.set(key, at);
    }
    const counts = await Promise.all([...addresses.values()].map((at) => this.deliverTo(at, delivery)));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** For a socket that moved from `from` to `to`: resolves once the deliveries already on their way to `from` are done, so it hears nothing at `to` before them. */
  private async deliveriesDone(from: SubscriberAddress, to: SubscriberAddress): Promise<void> {
    const key = addressKey(from);
    if (key !== addressKey(to)) await this.inFlight.get(key);
  }

  /** Queues a delivery to one address behind the one on its way there. */
  private deliverTo(at: SubscriberAddress, delivery: ChannelDelivery): Promise<number> {
    const key = addressKey(at);
    const sent = (this.inFlight.get(key) ?? Promise.resolve()).then(() => this.send(at, delivery));
    const done = sent.then(() => {});
    this.inFlight.set(key, done);
    void done.then(() => {
      if (this.inFlight.get(key) === done) this.inFlight.delete(key);
    });
    return sent;
  }

  /** One `deliver` call; its receipt tells which recorded subscriptions are gone. Never throws. */
  private async send(at: SubscriberAddress, delivery: ChannelDelivery): Promise<number> {
    const key = addressKey(at);
    const recordedBefore = this.recordings;
    let receipt: DeliveryReceipt;
    try {
      receipt = await this.targetOf(at).deliver(delivery);
    } catch (error) {
      // Kept: a failed call says nothing about the sockets; a stub that failed is not reused.
      this.targets.delete(key);
      createLogger(readConfig(this.env).devMode).warn("deliver_failed", { channel: delivery.channel, address: key, error: String(error) });
      return 0;
    }
    if (receipt.incarnation !== at.incarnation || receipt.subscribers === 0) {
      // A restarted host lost those sockets; an address with none left forgot to tell us.
      const gone = [...this.subscribers().values()].filter(
        (s) =>
          addressKey(s.at) === key &&
          s.lostAt === null &&
          s.recorded <= recordedBefore &&
          (receipt.subscribers === 0 || s.at.incarnation !== receipt.incarnation),
      );
      if (gone.length > 0) await this.forget(gone, "lost");
    }
    return receipt.delivered;
  }

  private targetOf(at: SubscriberAddress): DeliveryTarget {
    const key = addressKey(at);
    let target = this.targets.get(key);
    if (!target) {
      target = at.kind === "host" ? this.env.HOST.getByName(at.name) : this.env.POLLING.getByName(at.name);
      this.targets.set(key, target);
    }
    return target;
  }

  /** A join from a new incarnation of an address: the sockets of the previous one are gone. */
  private forgetOtherIncarnations(at: SubscriberAddress): void {
    const key = addressKey(at);
    const gone = [...this.subscribers().values()].filter(
      (s) => addressKey(s.at) === key && s.lostAt === null && s.at.incarnation !== at.incarnation,
    );
    if (gone.length > 0) void this.forget(gone, "lost");
  }

  /**
   * Ends subscriptions (see LeaveReason): a user whose last socket this was leaves
   * now (unsubscribe) or after PRESENCE_LEAVE_GRACE unless back by then (disconnect);
   * a lost one that can recover is kept for RECOVERY_WINDOW, presence included.
   */
  private async forget(ended: Subscriber[], reason: LeaveReason): Promise<void> {
    const appId = this.ctx.storage.kv.get<string>("app");
    const channel = this.channelName();
    const subscribers = this.subscribers();
    const window = readConfig(this.env).recoveryWindow;
    const gone: Subscriber[] = [];
    for (const subscriber of ended) {
      if (reason === "lost" && subscriber.pid !== null && window > 0) {
        subscriber.lostAt = Date.now();
        this.ctx.storage.sql.exec("UPDATE subscribers SET lost_at = ? WHERE socket_id = ?", subscriber.lostAt, subscriber.socketId);
        await this.scheduleAlarm(subscriber.lostAt + window);
        continue;
      }
      gone.push(subscriber);
      subscribers.delete(subscriber.socketId);
      this.anyRecoverable = null;
      this.ctx.storage.sql.exec("DELETE FROM subscribers WHERE socket_id = ?", subscriber.socketId);
    }
    // Queued before the awaits below, so info() never answers ahead of the directory.
    void this.report();
    if (!appId || !channel) return;
    const grace = readConfig(this.env).presenceLeaveGrace;
    const leaving = new Map<string, PresenceMember>();
    for (const { member } of gone) {
      if (member && !this.isPresent(member.user_id)) leaving.set(JSON.stringify(member.user_id), member);
    }
    for (const member of leaving.values()) {
      if (reason === "unsubscribe" || grace === 0) {
        this.cancelPendingLeave(member.user_id);
        this.broadcast(eventPacket("presence:leaving", channel, member));
        this.webhooks.memberRemoved(appId, channel, member);
      } else {
        const due = Date.now() + grace;
        this.ctx.storage.kv.put(leaveKey(member.user_id), { member, due } satisfies PendingLeave);
        await this.scheduleAlarm(due);
      }
    }
    this.webhooks.occupancy(appId, channel, () => this.isOccupied());
  }

  /** Presence events and whispers: delivered in order with the publishes, not awaited by the call that caused them. */
  private broadcast(frame: string, except: string | null = null): void {
    const channel = this.channelName();
    if (channel) void this.deliverToAll({ channel, frames: [frame], excluded: [except] });
  }

  private subscribers(): Map<string, Subscriber> {
    if (!this.loaded) {
      const sql = this.ctx.storage.sql;
      sql.exec(`CREATE TABLE IF NOT EXISTS subscribers (
        socket_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        incarnation TEXT NOT NULL,
        member TEXT,
        joined_at INTEGER NOT NULL,
        pid TEXT,
        lost_at INTEGER
      )`);
      // Tables created before recovery existed get its columns.
      const columns = new Set(sql.exec<{ name: string }>("SELECT name FROM pragma_table_info('subscribers')").toArray().map((c) => c.name));
      for (const column of ["pid TEXT", "lost_at INTEGER"]) {
        if (!columns.has(column.split(" ")[0]!)) sql.exec(`ALTER TABLE subscribers ADD COLUMN ${column}`);
      }
      this.loaded = new Map();
      const rows = sql.exec<{
        socket_id: string;
        kind: SubscriberAddress["kind"];
        name: string;
        incarnation: string;
        member: string | null;
        pid: string | null;
        lost_at: number | null;
      }>("SELECT socket_id, kind, name, incarnation, member, pid, lost_at FROM subscribers ORDER BY joined_at, rowid");
      for (const row of rows) {
        this.loaded.set(row.socket_id, {
          socketId: row.socket_id,
          at: { kind: row.kind, name: row.name, incarnation: row.incarnation },
          member: row.member === null ? null : JSON.parse(row.member),
          pid: row.pid,
          lostAt: row.lost_at,
          recorded: ++this.recordings,
        });
      }
    }
    return this.loaded;
  }

  /** Inserts a subscription, or moves an existing one (same row, same place in the join order). */
  private record(subscriber: Subscriber): void {
    const { socketId, at, member, pid, lostAt } = subscriber;
    this.subscribers().set(socketId, subscriber);
    this.anyRecoverable = null;
    this.ctx.storage.sql.exec(
      `INSERT INTO subscribers (socket_id, kind, name, incarnation, member, joined_at, pid, lost_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (socket_id) DO UPDATE SET kind = excluded.kind, name = excluded.name, incarnation = excluded.incarnation,
         member = excluded.member, pid = excluded.pid, lost_at = excluded.lost_at`,
      socketId,
      at.kind,
      at.name,
      at.incarnation,
      member === null ? null : JSON.stringify(member),
      Date.now(),
      pid,
      lostAt,
    );
  }

  /** Subscriptions with a connection (those kept for a recovery are not counted). */
  private connectedCount(): number {
    let count = 0;
    for (const { lostAt } of this.subscribers().values()) if (lostAt === null) count++;
    return count;
  }

  /** Frames are numbered and kept while any subscriber, connected or kept, could recover. */
  private keepsHistory(): boolean {
    if (readConfig(this.env).recoveryWindow === 0) return false;
    this.anyRecoverable ??= [...this.subscribers().values()].some(({ pid }) => pid !== null);
    return this.anyRecoverable;
  }

  private history(): ChannelHistory {
    const config = readConfig(this.env);
    this.historyStore ??= new ChannelHistory(this.ctx.storage.sql, {
      maxBatches: config.recoveryHistoryBatches,
      maxBytes: config.recoveryHistoryBytes,
    });
    return this.historyStore;
  }

  private isPresent(userId: string | number): boolean {
    for (const { member } of this.subscribers().values()) if (member?.user_id === userId) return true;
    return false;
  }

  /** One entry per user in join order: connected users, then those inside their leave grace. */
  private members(): PresenceMember[] {
    const byUser = new Map<string, PresenceMember>();
    for (const { member } of this.subscribers().values()) {
      const key = JSON.stringify(member?.user_id);
      if (member && !byUser.has(key)) byUser.set(key, member);
    }
    for (const [key, pending] of this.ctx.storage.kv.list<PendingLeave>({ prefix: LEAVE_PREFIX })) {
      const userKey = key.slice(LEAVE_PREFIX.length);
      if (!byUser.has(userKey)) byUser.set(userKey, pending.member);
    }
    return [...byUser.values()];
  }

  /** Subscriptions, or members inside their leave grace: a reconnecting tab keeps the channel occupied. */
  private isOccupied(): boolean {
    if (this.subscribers().size > 0) return true;
    for (const _ of this.ctx.storage.kv.list({ prefix: LEAVE_PREFIX, limit: 1 })) return true;
    return false;
  }

  private cancelPendingLeave(userId: string | number): boolean {
    return this.ctx.storage.kv.delete(leaveKey(userId));
  }

  /** Sets the alarm unless an earlier one is pending; the pending time is cached to spare a storage read per publish. */
  private async scheduleAlarm(at: number): Promise<void> {
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }

  /**
   * Batch ids live in storage, not memory, so an evicted or hibernated object still
   * refuses a replay; each is kept until its latest signed request expires (a retry
   * re-signs, so it extends that). Expired ids go on the next batch, by index.
   */
  private isDuplicateBatch({ id, rememberUntil }: BatchStamp): boolean {
    const sql = this.ctx.storage.sql;
    if (!this.batchTableReady) {
      sql.exec("CREATE TABLE IF NOT EXISTS seen_batches (id TEXT PRIMARY KEY, forget_at INTEGER NOT NULL)");
      sql.exec("CREATE INDEX IF NOT EXISTS seen_batches_forget_at ON seen_batches (forget_at)");
      this.batchTableReady = true;
    }
    sql.exec("DELETE FROM seen_batches WHERE forget_at < ?", Date.now());
    const seen = sql.exec("SELECT 1 FROM seen_batches WHERE id = ?", id).toArray().length > 0;
    sql.exec(
      "INSERT INTO seen_batches (id, forget_at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET forget_at = max(forget_at, excluded.forget_at)",
      id,
      rememberUntil,
    );
    return seen;
  }

  /** Stores the object's (app, channel) once, for alarms that run without a caller to tell them. */
  private rememberName(appId: string, channel: string): void {
    if (this.nameStored) return;
    if (this.ctx.storage.kv.get("channel") === undefined) {
      this.ctx.storage.kv.put("app", appId);
      this.ctx.storage.kv.put("channel", channel);
    }
    this.nameStored = true;
  }

  private channelName(): string | undefined {
    return this.ctx.storage.kv.get<string>("channel");
  }

  /** Queues a report of the current occupancy and counters; changes made while one is on its way share the next. */
  private report(): Promise<void> {
    if (!this.reportQueued) {
      this.reportQueued = true;
      this.reports = this.reports.then(() => {
        this.reportQueued = false;
        return this.sendReport();
      });
    }
    return this.reports;
  }

  private async sendReport(): Promise<void> {
    const appId = this.ctx.storage.kv.get<string>("app");
    const channel = this.channelName();
    if (!appId || !channel) return;
    const counters = this.counters;
    this.counters = { received: 0, delivered: 0 };
    try {
      await this.env.APP.getByName(appId).reportChannel({
        channel,
        subscriptionCount: this.connectedCount(),
        userCount: channelKind(channel) === "presence" ? this.members().length : null,
        received: counters.received,
        delivered: counters.delivered,
      });
    } catch (error) {
      // Put the counts back; the next alarm retries.
      this.counters.received += counters.received;
      this.counters.delivered += counters.delivered;
      console.warn(JSON.stringify({ level: "warn", event: "report_failed", channel, error: String(error) }));
      await this.scheduleAlarm(Date.now() + REPORT_RETRY_MS);
    }
  }
}
