/**
 * Channel Durable Object: one per (app, channel). It accepts links (one WebSocket
 * per subscribed client socket) with the hibernation API, so an idle channel
 * sleeps and costs nothing; everything it needs about a link lives in the link's
 * attachment and survives hibernation and eviction.
 *
 * Presence is derived from the links: a user joins with their first link and
 * leaves after their last, with a short grace so a reconnecting tab does not make
 * the others see leaving/joining.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig, type Env } from "../worker/config.ts";
import type { PresenceMember } from "../worker/channels/auth.ts";
import { LINK_INFO_HEADER, LINK_SEPARATOR, UNSUBSCRIBE_CLOSE_CODE, type LinkInfo } from "../worker/channels/link.ts";
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

/** A link's hibernation attachment: what the session said, plus when it joined (members list in join order). */
interface AttachedLink extends LinkInfo {
  joinedAt: number;
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

export class ChannelObject extends DurableObject<Env> {
  private linksLoaded = false;
  private readonly links = new Map<WebSocket, AttachedLink>();
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

  override async fetch(request: Request): Promise<Response> {
    this.invocations++;
    if (request.headers.get("upgrade") !== "websocket") return new Response("expected a link", { status: 426 });
    let info: LinkInfo;
    try {
      info = JSON.parse(request.headers.get(LINK_INFO_HEADER) ?? "");
      if (!isValidChannelName(info.channel) || typeof info.socketId !== "string" || typeof info.appId !== "string") {
        throw new Error("incomplete link info");
      }
    } catch (error) {
      return new Response(`bad link: ${error}`, { status: 400 });
    }
    this.rememberName(info.appId, info.channel);
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    const links = this.loadLinks();
    const { resumed, ...attached } = info;
    const member = info.member;
    const alreadyPresent = member !== null && this.isPresent(member.user_id);
    const returning = member !== null && this.cancelPendingLeave(member.user_id);
    // An upgraded socket's new link takes over from its old one in this same turn, so each frame reaches exactly one of them.
    const replaced = resumed ? this.closeLinksOf(info.socketId) : undefined;
    const link: AttachedLink = { ...attached, joinedAt: replaced?.joinedAt ?? Date.now() };
    server.serializeAttachment(link);
    links.set(server, link);
    this.webhooks.occupancy(info.appId, info.channel, () => this.isOccupied());
    if (member) {
      if (!resumed) server.send(eventPacket("presence:subscribed", info.channel, this.members()));
      if (!alreadyPresent && !returning) {
        this.broadcast(eventPacket("presence:joining", info.channel, member), server);
        this.webhooks.memberAdded(info.appId, info.channel, member);
      }
    }
    void this.report();
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Fans a batch out to every link: each frame is encoded once; toOthers skips the sender's link. */
  async publish(appId: string, channel: string, messages: ChannelMessage[], batch?: BatchStamp): Promise<{ delivered: number; duplicate: boolean }> {
    this.invocations++;
    if (batch !== undefined && this.isDuplicateBatch(batch)) return { delivered: 0, duplicate: true };
    this.rememberName(appId, channel);
    const frames = messages.map((m) => eventPacket(m.event, channel, m.data));
    const whole = frames.join(LINK_SEPARATOR);
    const excluded = new Set<string>();
    for (const m of messages) if (m.socket) excluded.add(m.socket);
    let delivered = 0;
    for (const [ws, link] of this.loadLinks()) {
      let batch = whole;
      let count = frames.length;
      if (excluded.has(link.socketId)) {
        const own = frames.filter((_, i) => messages[i]!.socket !== link.socketId);
        if (own.length === 0) continue;
        batch = own.join(LINK_SEPARATOR);
        count = own.length;
      }
      try {
        ws.send(batch);
        delivered += count;
      } catch {
        this.dropLink(ws); // the link is closing; its close event does the presence bookkeeping
      }
    }
    this.counters.received += messages.length;
    this.counters.delivered += delivered;
    await this.scheduleAlarm(Date.now() + COUNTER_REPORT_DELAY_MS);
    return { delivered, duplicate: false };
  }

  async info(): Promise<ChannelInfo> {
    this.invocations++;
    // Never answer ahead of the app's directory: /channels/:channel and /channels agree.
    await this.reports;
    const links = this.loadLinks();
    const info: ChannelInfo = { subscription_count: links.size, occupied: links.size > 0, invocations: this.invocations };
    const channel = this.channelName();
    if (channel && channelKind(channel) === "presence") info.user_count = this.members().length;
    return info;
  }

  async users(): Promise<{ id: string | number; user_info: unknown }[]> {
    this.invocations++;
    return this.members().map((m) => ({ id: m.user_id, user_info: m.user_info }));
  }

  /**
   * A whisper from one link goes to every other link of this channel. The rules are
   * checked here again rather than trusted to the session: only a subscriber (a link
   * is one subscription), only on private and presence channels, only `client-*`
   * events, and no larger than a connection may whisper in a second.
   */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    this.invocations++;
    const link = this.loadLinks().get(ws);
    if (!link) return;
    const refuse = (reason: string) =>
      createLogger(readConfig(this.env).devMode).warn("whisper_refused", { channel: link.channel, socketId: link.socketId, reason });
    if (channelKind(link.channel) === "public") return refuse("public channel");
    if (typeof message !== "string") return refuse("not text");
    if (utf8Length(message) > readConfig(this.env).whisperBytes) return refuse("larger than WHISPER_BYTES");
    let whisper: { event?: unknown; data?: unknown };
    try {
      whisper = JSON.parse(message);
    } catch {
      return refuse("not JSON");
    }
    if (typeof whisper.event !== "string" || !whisper.event.startsWith("client-")) return refuse("not a client-* event");
    this.broadcast(eventPacket(whisper.event, link.channel, whisper.data), ws);
    this.webhooks.clientEvent(link, whisper.event, whisper.data);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    this.invocations++;
    await this.linkGone(ws, code === UNSUBSCRIBE_CLOSE_CODE);
    try {
      ws.close(1000, "closed");
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    this.invocations++;
    await this.linkGone(ws, false);
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
    if (appId && channel) this.webhooks.occupancy(appId, channel, () => this.isOccupied());
    await this.report();
    if (nextLeave !== null) await this.scheduleAlarm(nextLeave);
  }

  private async linkGone(ws: WebSocket, leaveNow: boolean): Promise<void> {
    const link = this.loadLinks().get(ws);
    if (!link) return;
    this.dropLink(ws);
    // Queued before the awaits below, so info() never answers ahead of the directory.
    void this.report();
    const member = link.member;
    if (member && !this.isPresent(member.user_id)) {
      const grace = readConfig(this.env).presenceLeaveGrace;
      if (leaveNow || grace === 0) {
        this.cancelPendingLeave(member.user_id);
        this.broadcast(eventPacket("presence:leaving", link.channel, member));
        this.webhooks.memberRemoved(link.appId, link.channel, member);
      } else {
        const due = Date.now() + grace;
        this.ctx.storage.kv.put(leaveKey(member.user_id), { member, due } satisfies PendingLeave);
        await this.scheduleAlarm(due);
      }
    }
    this.webhooks.occupancy(link.appId, link.channel, () => this.isOccupied());
  }

  /** Closes a socket's links without presence changes (its replacement keeps the member present); returns one of them. */
  private closeLinksOf(socketId: string): AttachedLink | undefined {
    let closed: AttachedLink | undefined;
    for (const [ws, link] of this.loadLinks()) {
      if (link.socketId !== socketId) continue;
      closed ??= link;
      this.dropLink(ws);
      try {
        ws.close(1000, "replaced");
      } catch {
        // already closing
      }
    }
    return closed;
  }

  private dropLink(ws: WebSocket): void {
    this.links.delete(ws);
    // Hibernated sockets come back from getWebSockets(); clearing the attachment
    // keeps a closing link out of the rebuilt map.
    try {
      ws.serializeAttachment(null);
    } catch {
      // closed sockets cannot carry attachments
    }
  }

  private loadLinks(): Map<WebSocket, AttachedLink> {
    if (!this.linksLoaded) {
      for (const ws of this.ctx.getWebSockets()) {
        const info = ws.deserializeAttachment() as AttachedLink | null;
        if (info) this.links.set(ws, info);
      }
      this.linksLoaded = true;
    }
    return this.links;
  }

  private broadcast(frame: string, except?: WebSocket): void {
    for (const ws of this.loadLinks().keys()) {
      if (ws === except) continue;
      try {
        ws.send(frame);
      } catch {
        this.dropLink(ws);
      }
    }
  }

  private isPresent(userId: string | number): boolean {
    for (const link of this.loadLinks().values()) if (link.member?.user_id === userId) return true;
    return false;
  }

  /** One entry per user in join order: connected users, then those inside their leave grace. */
  private members(): PresenceMember[] {
    const byUser = new Map<string, PresenceMember>();
    const links = [...this.loadLinks().values()].sort((a, b) => a.joinedAt - b.joinedAt);
    for (const link of links) {
      const key = JSON.stringify(link.member?.user_id);
      if (link.member && !byUser.has(key)) byUser.set(key, link.member);
    }
    for (const [key, pending] of this.ctx.storage.kv.list<PendingLeave>({ prefix: LEAVE_PREFIX })) {
      const userKey = key.slice(LEAVE_PREFIX.length);
      if (!byUser.has(userKey)) byUser.set(userKey, pending.member);
    }
    return [...byUser.values()];
  }

  /** Links, or members inside their leave grace: a reconnecting tab keeps the channel occupied. */
  private isOccupied(): boolean {
    if (this.loadLinks().size > 0) return true;
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
    const links = this.loadLinks();
    const counters = this.counters;
    this.counters = { received: 0, delivered: 0 };
    try {
      await this.env.APP.getByName(appId).reportChannel({
        channel,
        subscriptionCount: links.size,
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
