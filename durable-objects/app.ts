/**
 * App Durable Object: one per app. The directory of occupied channels and the
 * counters behind `/stats` and the laravel-echo-server HTTP API, plus connection
 * admission for MAX_CLIENTS. It is never on the per-message path: channels report
 * occupancy when it changes and message counters every few seconds, sessions call it once on
 * connect and once on disconnect; renewals (leaseRenewalInterval) come from each
 * polling session, and from each connection host for all of its sockets at once.
 *
 * A session whose Worker or object dies without running its close handlers never
 * releases its entry, so entries are leases: one not renewed within two and a half
 * renewal intervals is dropped, and with MAX_CLIENTS set its slot is free again a
 * few minutes after a crash or a deploy. Every live session renews whatever Worker
 * version serves it, so two versions live at once (a gradual deploy) keep their
 * counts. A renewal only touches memory; storage holds the admitted sids, so an
 * evicted object reloads them with a fresh lease each and drops those that stop
 * renewing.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig, type Env } from "../worker/config.ts";
import { leaseRenewalInterval } from "../worker/engine/admission.ts";

export interface ChannelReport {
  channel: string;
  subscriptionCount: number;
  /** Distinct presence users; null for other channels. */
  userCount: number | null;
  /** Messages published to the channel and frames delivered to clients since the last report. */
  received: number;
  delivered: number;
}

export interface ChannelEntry {
  subscription_count: number;
  user_count: number | null;
}

export type NamedChannelEntry = { name: string } & ChannelEntry;

export interface AppSnapshot {
  /** Connected clients (Engine.IO sessions admitted and not yet released). */
  connections: number;
  /** Occupied channels. */
  channels: number;
  /** Channel subscriptions summed over occupied channels. */
  subscriptions: number;
  /** Messages published to this app's channels, and frames delivered to clients, since the app was first seen. */
  received: number;
  delivered: number;
  /** When this object first ran (ms since epoch): the app's uptime starts here. */
  startedAt: number;
}

const CHANNEL_PREFIX = "channel:";
const bySubscriptions = (a: ChannelEntry, b: ChannelEntry) => b.subscription_count - a.subscription_count;
const CONNECTION_PREFIX = "connection:";
const PRUNE_EVERY_MS = 30_000;

export class AppObject extends DurableObject<Env> {
  /** Admitted sessions and when their lease ends; loaded from storage once per object lifetime. */
  private leases: Map<string, number> | null = null;
  private prunedAt = 0;
  /** Sums over the channel directory, loaded once by a scan and then kept up to date by reports. */
  private occupancy: { channels: number; subscriptions: number } | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    if (ctx.storage.kv.get("startedAt") === undefined) ctx.storage.kv.put("startedAt", Date.now());
  }

  /** Admits a new connection unless `maxClients` (0: unlimited) are already connected; an admitted one just renews. */
  async admit(sessionId: string, maxClients: number): Promise<boolean> {
    const leases = this.liveLeases();
    if (!leases.has(sessionId) && maxClients > 0 && leases.size >= maxClients) return false;
    this.lease(sessionId);
    return true;
  }

  /** Whether a new connection would be admitted now (a handshake asks before the client has proved it is alive). */
  async hasRoom(maxClients: number): Promise<boolean> {
    return maxClients === 0 || this.liveLeases().size < maxClients;
  }

  /** A live session's renewal; one whose lease was dropped meanwhile (a long stall) is counted again. */
  async renew(sessionId: string): Promise<void> {
    this.liveLeases();
    this.lease(sessionId);
  }

  /** Renews every session a connection host holds, in one request per host and interval. */
  async renewAll(sessionIds: string[]): Promise<void> {
    this.liveLeases();
    for (const sessionId of sessionIds) this.lease(sessionId);
  }

  async release(sessionId: string): Promise<void> {
    if (this.loadLeases().delete(sessionId)) this.ctx.storage.kv.delete(CONNECTION_PREFIX + sessionId);
  }

  async reportChannel(report: ChannelReport): Promise<void> {
    const kv = this.ctx.storage.kv;
    const occupancy = this.loadOccupancy();
    const key = CHANNEL_PREFIX + report.channel;
    const previous = kv.get<ChannelEntry>(key);
    if (previous) {
      occupancy.channels--;
      occupancy.subscriptions -= previous.subscription_count;
    }
    if (report.subscriptionCount > 0) {
      kv.put(key, { subscription_count: report.subscriptionCount, user_count: report.userCount } satisfies ChannelEntry);
      occupancy.channels++;
      occupancy.subscriptions += report.subscriptionCount;
    } else if (previous) {
      kv.delete(key);
    }
    if (report.received || report.delivered) {
      kv.put("received", (kv.get<number>("received") ?? 0) + report.received);
      kv.put("delivered", (kv.get<number>("delivered") ?? 0) + report.delivered);
    }
  }

  /** The app's totals; constant time however many channels are occupied. */
  async snapshot(): Promise<AppSnapshot> {
    const kv = this.ctx.storage.kv;
    return {
      connections: this.liveLeases().size,
      ...this.loadOccupancy(),
      received: kv.get<number>("received") ?? 0,
      delivered: kv.get<number>("delivered") ?? 0,
      startedAt: kv.get<number>("startedAt")!,
    };
  }

  /** Occupied channels whose name starts with `prefix`, as last reported (channels report each change at once). */
  async channels(prefix = ""): Promise<Record<string, ChannelEntry>> {
    return Object.fromEntries(this.directory(prefix));
  }

  /** The `limit` channels with the most subscriptions (the dashboard's table), largest first. */
  async busiestChannels(limit: number): Promise<NamedChannelEntry[]> {
    const busiest: NamedChannelEntry[] = [];
    for (const [name, entry] of this.directory("")) {
      busiest.push({ name, ...entry });
      // Trim now and then rather than sorting the whole directory at the end.
      if (busiest.length >= limit * 2) {
        busiest.sort(bySubscriptions);
        busiest.length = limit;
      }
    }
    busiest.sort(bySubscriptions);
    return busiest.slice(0, limit);
  }

  private *directory(prefix: string): Generator<[string, ChannelEntry]> {
    for (const [key, entry] of this.ctx.storage.kv.list<ChannelEntry>({ prefix: CHANNEL_PREFIX + prefix })) {
      yield [key.slice(CHANNEL_PREFIX.length), entry];
    }
  }

  /** Stores a new admission (renewals stay in memory) and extends its lease. */
  private lease(sessionId: string): void {
    const leases = this.loadLeases();
    if (!leases.has(sessionId)) this.ctx.storage.kv.put(CONNECTION_PREFIX + sessionId, Date.now());
    leases.set(sessionId, Date.now() + this.leaseMs);
  }

  /** Two and a half renewals, so one late renewal does not drop a live session. */
  private get leaseMs(): number {
    return leaseRenewalInterval(readConfig(this.env).maxClients) * 2.5;
  }

  private loadLeases(): Map<string, number> {
    if (this.leases === null) {
      // After a restart nobody knows who is still alive: everyone gets one lease to renew in.
      const until = Date.now() + this.leaseMs;
      this.leases = new Map();
      for (const [key] of this.ctx.storage.kv.list({ prefix: CONNECTION_PREFIX })) {
        this.leases.set(key.slice(CONNECTION_PREFIX.length), until);
      }
    }
    return this.leases;
  }

  /** The leases, without those that ran out (checked every PRUNE_EVERY_MS at most). */
  private liveLeases(): Map<string, number> {
    const leases = this.loadLeases();
    const now = Date.now();
    if (now - this.prunedAt < PRUNE_EVERY_MS) return leases;
    this.prunedAt = now;
    for (const [sessionId, until] of leases) {
      if (until >= now) continue;
      leases.delete(sessionId);
      this.ctx.storage.kv.delete(CONNECTION_PREFIX + sessionId);
    }
    return leases;
  }

  private loadOccupancy(): { channels: number; subscriptions: number } {
    if (this.occupancy === null) {
      const occupancy = { channels: 0, subscriptions: 0 };
      for (const [, entry] of this.directory("")) {
        occupancy.channels++;
        occupancy.subscriptions += entry.subscription_count;
      }
      this.occupancy = occupancy;
    }
    return this.occupancy;
  }
}
