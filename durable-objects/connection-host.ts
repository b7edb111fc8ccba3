/**
 * ConnectionHostObject: a hibernating Durable Object holding many client WebSockets
 * of one app and one Engine.IO version, named by (app, version, colo, shard). The
 * Worker only routes; the host accepts each socket with the hibernation API and keeps
 * its Socket.IO session's state in the socket's attachment, so a hibernated or
 * evicted host rebuilds every session from `ctx.getWebSockets()` without a call.
 *
 * Channels deliver a batch once per host (`deliver`); the host fans it out to its
 * sockets through its LocalSubscriptions. Heartbeats wake nothing: an Engine.IO 3
 * host answers the client's `2` with `3` by auto-response; an Engine.IO 4 host pings
 * all its clients from one alarm per PING_INTERVAL and absorbs their `3` with a `6`
 * (a noop clients ignore). That same alarm pass closes clients whose last sign of
 * life (`getWebSocketAutoResponseTimestamp`) is too old and renews all the host's
 * MAX_CLIENTS leases in one request, and ends upgrades from polling that did not
 * complete within UPGRADE_TIMEOUT. A host runs no timers: only its alarm.
 *
 * The Durable Object class is a thin shell over ConnectionHost, which takes the
 * state's socket and storage calls it uses, so tests can drive it directly.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig, type Config, type Env } from "../worker/config.ts";
import type { ChannelDelivery, DeliveryReceipt, DeliveryTarget, SubscriberAddress } from "../worker/channels/delivery.ts";
import { LocalSubscriptions } from "../worker/channels/local-subscriptions.ts";
import { openPacketFor } from "../worker/engine/connection.ts";
import { createLogger, type Logger } from "../worker/log.ts";
import { ProtocolError } from "../worker/protocol/errors.ts";
import { decodeFrame, encodeTextFrame, type EnginePacket, type EngineVersion } from "../worker/protocol/engineio.ts";
import type { SessionHandover, SessionState } from "../worker/session/session.ts";
import { startSession, type SessionOrigin, type StartedSession } from "../worker/session/start.ts";
import { HOST_FULL_HEADER, HOST_HEADERS } from "../worker/engine/forwarding.ts";
import { leaseRenewalInterval } from "../worker/engine/admission.ts";
import type { PollingSessionObject, UpgradeHandover } from "./polling-session.ts";

/** What a socket's attachment holds: enough to rebuild its session after hibernation or eviction. */
interface SocketAttachment {
  sid: string;
  version: EngineVersion;
  appId: string;
  cookie: string | null;
  acceptedAt: number;
  /** The Socket.IO session; null while an upgrade from polling is in progress. */
  session: SessionState | null;
}

/** What a host remembers of itself in storage. */
interface HostIdentity {
  name: string;
  appId: string;
  version: EngineVersion;
}

/** The calls of DurableObjectState a host uses. */
export type HostState = Pick<
  DurableObjectState,
  "acceptWebSocket" | "getWebSockets" | "getWebSocketAutoResponseTimestamp" | "setWebSocketAutoResponse" | "waitUntil"
> & { storage: Pick<DurableObjectStorage, "kv" | "getAlarm" | "setAlarm"> };

interface Upgrade {
  polling: DurableObjectStub<PollingSessionObject>;
  token: string;
  /** engine.io's upgradeTimeout: a WebSocket that never probes, or probes and never sends `5`, is closed then. */
  deadline: number;
}

interface HostedSocket {
  ws: WebSocket;
  attachment: SocketAttachment;
  started: StartedSession | null;
  upgrade: Upgrade | null;
  /** Until the session starts, frames wait their turn: the upgrade steps await the polling object. */
  steps: Promise<void>;
  /** While a handed-over session catches up, what it sends waits behind the frames still arriving at the polling side. */
  held: string[] | null;
  open: boolean;
  /** Last frame from the client while this host was awake (auto-responses are counted by the runtime). */
  heardAt: number;
}

/** WebSocket close code for why we end a connection (clients reconnect either way). */
function closeCodeFor(reason: string): number {
  if (reason.startsWith("protocol error")) return 1002;
  if (reason.startsWith("payload too large")) return 1009;
  return 1000;
}

// Refuse permessage-deflate: workerd would otherwise compress every frame, however
// small, and inflating small frames is what limits clients (DESIGN.md, measured).
// workerd documents an empty extensions header on the 101 as the refusal. Locally
// it has no effect (measured under wrangler dev 4.164), so the bench's clients do not offer it.
function switchingProtocols(client: WebSocket): Response {
  return new Response(null, { status: 101, webSocket: client, headers: { "sec-websocket-extensions": "" } });
}

// The same text frames for Engine.IO 3 and 4.
const PING_FRAME = encodeTextFrame({ type: "ping" }, 4);
const PROBE_PONG_FRAME = encodeTextFrame({ type: "pong", data: "probe" }, 4);

const IDENTITY_KEY = "identity";
const INCARNATION_KEY = "incarnation";
const RENEW_AT_KEY = "renewAt";

export class ConnectionHost implements DeliveryTarget {
  private readonly state: HostState;
  private readonly env: Env;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly local = new LocalSubscriptions();
  private readonly sockets = new Map<WebSocket, HostedSocket>();
  private identity: HostIdentity | null;
  readonly incarnation: string;

  constructor(state: HostState, env: Env) {
    this.state = state;
    this.env = env;
    this.config = readConfig(env);
    this.log = createLogger(this.config.devMode);
    const kv = state.storage.kv;
    this.identity = kv.get<HostIdentity>(IDENTITY_KEY) ?? null;
    const sockets = state.getWebSockets();
    // A host starting with no sockets (first start, or after a deploy dropped them all) is a new incarnation.
    let incarnation = kv.get<string>(INCARNATION_KEY);
    if (sockets.length === 0 || incarnation === undefined) kv.put(INCARNATION_KEY, (incarnation = crypto.randomUUID()));
    this.incarnation = incarnation;
    if (this.identity) this.setAutoResponse(this.identity.version);
    for (const ws of sockets) this.rebuild(ws);
    if (sockets.length > 0) this.log.debug("host_restored", { host: this.identity?.name, sockets: this.sockets.size });
  }

  /** A WebSocket request the Worker forwarded (HOST_HEADERS). */
  async accept(request: Request): Promise<Response> {
    const closeWith = request.headers.get(HOST_HEADERS.closeWith);
    if (closeWith !== null) return this.acceptAndClose(closeWith);
    if (this.state.getWebSockets().length >= this.config.hostCapacity) {
      this.log.debug("host_full", { host: this.identity?.name, capacity: this.config.hostCapacity });
      return new Response("connection host full", { status: 503, headers: { [HOST_FULL_HEADER]: "1" } });
    }
    const version: EngineVersion = new URL(request.url).searchParams.get("EIO") === "4" ? 4 : 3;
    const appId = request.headers.get(HOST_HEADERS.appId)!;
    if (!this.identity) {
      this.identity = { name: request.headers.get(HOST_HEADERS.host)!, appId, version };
      this.state.storage.kv.put(IDENTITY_KEY, this.identity);
      this.setAutoResponse(version);
    }
    const [client, ws] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.state.acceptWebSocket(ws);
    const attachment: SocketAttachment = {
      sid: request.headers.get(HOST_HEADERS.sid)!,
      version: this.identity.version,
      appId,
      cookie: request.headers.get("cookie"),
      acceptedAt: Date.now(),
      session: null,
    };
    ws.serializeAttachment(attachment);
    const hosted = this.host(ws, attachment);
    const upgradeFrom = request.headers.get(HOST_HEADERS.upgradeFrom);
    if (upgradeFrom !== null) {
      const token = request.headers.get(HOST_HEADERS.upgradeToken)!;
      const deadline = attachment.acceptedAt + this.config.upgradeTimeout;
      hosted.upgrade = { polling: this.env.POLLING.getByName(upgradeFrom), token, deadline };
      await this.keepAlarm(deadline);
    } else {
      this.sendNow(hosted, [encodeTextFrame(openPacketFor(this.config, attachment.sid, attachment.version, []), attachment.version)]);
      this.begin(hosted, { early: [] });
      await this.keepAlarm();
    }
    return switchingProtocols(client);
  }

  async deliver(delivery: ChannelDelivery): Promise<DeliveryReceipt> {
    const { subscribers, delivered } = this.local.deliver(delivery);
    return { incarnation: this.incarnation, subscribers, delivered };
  }

  message(ws: WebSocket, data: string | ArrayBuffer): void {
    const hosted = this.hosted(ws);
    if (!hosted?.open) return;
    hosted.heardAt = Date.now();
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > this.config.maxPayload) return this.fail(hosted, `payload too large: frame over ${this.config.maxPayload} bytes`);
    let packet: EnginePacket;
    try {
      packet = decodeFrame(data, hosted.attachment.version);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return this.fail(hosted, `protocol error: ${error.message}`);
    }
    if (hosted.started) return hosted.started.engine.receive(packet);
    hosted.steps = hosted.steps.then(() => (hosted.started ? hosted.started.engine.receive(packet) : this.upgradeStep(hosted, packet)));
  }

  /** The client's WebSocket closed or failed. */
  closed(ws: WebSocket): void {
    const hosted = this.hosted(ws);
    if (!hosted) return;
    hosted.open = false;
    this.sockets.delete(ws);
    hosted.started?.engine.close("transport close");
  }

  /**
   * One pass for every socket: upgrades past their deadline, Engine.IO 4 pings, ping
   * timeouts for both versions, and the MAX_CLIENTS lease renewal of all sockets.
   * Scheduled while the host has sockets, sooner while an upgrade is in progress.
   */
  async alarm(): Promise<void> {
    const now = Date.now();
    const { pingInterval, pingTimeout } = this.config;
    const sessions: HostedSocket[] = [];
    let nextDeadline = Infinity;
    for (const hosted of this.sockets.values()) {
      if (hosted.upgrade) {
        if (now < hosted.upgrade.deadline) nextDeadline = Math.min(nextDeadline, hosted.upgrade.deadline);
        else {
          this.log.debug("upgrade_timeout", { sid: hosted.attachment.sid });
          this.closeSocket(hosted, `upgrade timeout: not completed within ${this.config.upgradeTimeout} ms`);
        }
        continue;
      }
      if (!hosted.started || !hosted.open) continue;
      // A live client answers a ping (EIO 4) or pings (EIO 3) every interval.
      if (now - this.lastHeard(hosted) > pingInterval + pingTimeout) {
        hosted.started.engine.close("ping timeout");
        continue;
      }
      sessions.push(hosted);
      if (hosted.attachment.version === 4) this.sendNow(hosted, [PING_FRAME]);
    }
    const kv = this.state.storage.kv;
    const renewAt = kv.get<number>(RENEW_AT_KEY) ?? 0;
    if (sessions.length > 0 && now >= renewAt && this.identity) {
      const sids = sessions.map((hosted) => hosted.attachment.sid);
      this.state.waitUntil(this.env.APP.getByName(this.identity.appId).renewAll(sids).catch(() => {}));
      kv.put(RENEW_AT_KEY, now + leaseRenewalInterval(this.config.maxClients));
    }
    if (this.sockets.size > 0) await this.state.storage.setAlarm(Math.min(now + this.alarmPeriod(), nextDeadline));
  }

  /** Engine.IO 4 hosts ping every interval; Engine.IO 3 hosts only look for silent clients, less often. */
  private alarmPeriod(): number {
    const { pingInterval, pingTimeout } = this.config;
    return this.identity?.version === 4 ? pingInterval : pingInterval + pingTimeout;
  }

  /** Makes sure the alarm runs, and by `by` at the latest. */
  private async keepAlarm(by = Infinity): Promise<void> {
    const at = Math.min(Date.now() + this.alarmPeriod(), by);
    const pending = await this.state.storage.getAlarm();
    if (pending !== null && pending <= at) return;
    if (this.state.storage.kv.get<number>(RENEW_AT_KEY) === undefined) {
      this.state.storage.kv.put(RENEW_AT_KEY, Date.now() + leaseRenewalInterval(this.config.maxClients));
    }
    await this.state.storage.setAlarm(at);
  }

  private lastHeard(hosted: HostedSocket): number {
    const answered = this.state.getWebSocketAutoResponseTimestamp(hosted.ws)?.getTime() ?? 0;
    return Math.max(answered, hosted.heardAt, hosted.attachment.acceptedAt);
  }

  /** One request/response pair per object: the version's heartbeat, answered without waking the host. */
  private setAutoResponse(version: EngineVersion): void {
    const pair = version === 3 ? new WebSocketRequestResponsePair("2", "3") : new WebSocketRequestResponsePair("3", "6");
    this.state.setWebSocketAutoResponse(pair);
  }

  private host(ws: WebSocket, attachment: SocketAttachment): HostedSocket {
    const hosted: HostedSocket = {
      ws,
      attachment,
      started: null,
      upgrade: null,
      steps: Promise.resolve(),
      held: null,
      open: true,
      heardAt: 0,
    };
    this.sockets.set(ws, hosted);
    return hosted;
  }

  /**
   * The socket's session. A host woken by a socket's close does not find that socket
   * in `getWebSockets()`, so it is rebuilt here to leave its channels.
   */
  private hosted(ws: WebSocket): HostedSocket | undefined {
    return this.sockets.get(ws) ?? this.rebuild(ws);
  }

  /** A socket accepted before this host was hibernated or evicted: its session goes on from the attachment. */
  private rebuild(ws: WebSocket): HostedSocket | undefined {
    const attachment = ws.deserializeAttachment() as SocketAttachment | null;
    if (attachment === null) return undefined; // closed by us: its session has ended
    if (!attachment.session) {
      // An upgrade was in progress: its steps (and the polling side's) were lost with the memory.
      try {
        ws.close(1000, "upgrade interrupted");
      } catch {
        // already closed
      }
      return undefined;
    }
    const hosted = this.host(ws, attachment);
    this.begin(hosted, { restore: attachment.session });
    return hosted;
  }

  private begin(hosted: HostedSocket, origin: SessionOrigin): void {
    const { attachment } = hosted;
    const save = () => {
      if (!hosted.started || !hosted.open) return;
      attachment.session = hosted.started.session.state();
      hosted.ws.serializeAttachment(attachment);
    };
    hosted.started = startSession(this.env, this.config, attachment, origin, {
      send: (frames) => this.send(hosted, frames),
      close: (reason) => this.closeSocket(hosted, reason),
      waitUntil: (promise) => this.state.waitUntil(promise),
      at: this.address(),
      local: this.local,
      heartbeat: "host",
      onChange: save,
    });
    if (!("restore" in origin)) save();
  }

  private address(): SubscriberAddress {
    return { kind: "host", name: this.identity!.name, incarnation: this.incarnation };
  }

  /** The socket's Transport.send: waits behind a handover's catching up (`held`), else goes out at once. */
  private send(hosted: HostedSocket, frames: string[]): void {
    if (hosted.held) hosted.held.push(...frames);
    else this.sendNow(hosted, frames);
  }

  private sendNow(hosted: HostedSocket, frames: string[]): void {
    if (!hosted.open) return;
    try {
      for (const frame of frames) hosted.ws.send(frame);
    } catch {
      // The socket closed under us; its close event ends the session.
    }
  }

  private closeSocket(hosted: HostedSocket, reason: string): void {
    if (!hosted.open) return;
    hosted.open = false;
    this.sockets.delete(hosted.ws);
    try {
      hosted.ws.serializeAttachment(null);
      hosted.ws.close(closeCodeFor(reason), reason.slice(0, 120));
    } catch {
      // already closed
    }
  }

  /** Ends the connection: through the session when there is one, so it leaves its channels. */
  private fail(hosted: HostedSocket, reason: string): void {
    if (hosted.started) hosted.started.engine.close(reason);
    else this.closeSocket(hosted, reason);
  }

  /** The upgrade handshake: `2probe` -> `3probe` once the polling side agrees, then `5`. */
  private async upgradeStep(hosted: HostedSocket, packet: EnginePacket): Promise<void> {
    const upgrade = hosted.upgrade;
    if (!upgrade || !hosted.open) return;
    if (packet.type === "ping" && packet.data === "probe") {
      if (await upgrade.polling.probe(upgrade.token)) return this.sendNow(hosted, [PROBE_PONG_FRAME]);
      return this.closeSocket(hosted, "session is no longer upgradable");
    }
    if (packet.type === "upgrade") {
      // Presence member data is `unknown` JSON, which the RPC stub's types cannot express.
      const handover = (await upgrade.polling.completeUpgrade(upgrade.token)) as UpgradeHandover | null;
      if (handover === null) return this.closeSocket(hosted, "session is no longer upgradable");
      hosted.upgrade = null;
      if (!hosted.open) return;
      hosted.attachment.cookie ??= handover.cookie;
      this.sendNow(hosted, handover.undelivered);
      if (handover.session) return this.resume(hosted, upgrade.polling, handover.session);
      return this.begin(hosted, { early: handover.early });
    }
    if (packet.type !== "noop") this.closeSocket(hosted, `protocol error: unexpected ${packet.type} packet during upgrade`);
  }

  /** Continues the session the polling object ran, in order: its last frames first, then ours. */
  private async resume(hosted: HostedSocket, polling: DurableObjectStub<PollingSessionObject>, handover: SessionHandover): Promise<void> {
    hosted.held = [];
    this.begin(hosted, { handover });
    try {
      this.sendNow(hosted, await polling.finishHandover(await hosted.started!.rejoined));
    } catch (error) {
      this.log.warn("handover_failed", { sid: hosted.attachment.sid, error: String(error) });
    }
    const waiting = hosted.held;
    hosted.held = null;
    this.sendNow(hosted, waiting);
  }

  private acceptAndClose(reason: string): Response {
    const [client, ws] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    ws.accept();
    ws.close(1000, reason);
    return switchingProtocols(client);
  }
}

export class ConnectionHostObject extends DurableObject<Env> implements DeliveryTarget {
  private readonly host = new ConnectionHost(this.ctx, this.env);

  override fetch(request: Request): Promise<Response> {
    return this.host.accept(request);
  }

  deliver(delivery: ChannelDelivery): Promise<DeliveryReceipt> {
    return this.host.deliver(delivery);
  }

  override webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): void {
    this.host.message(ws, message);
  }

  override webSocketClose(ws: WebSocket): void {
    this.host.closed(ws);
  }

  override webSocketError(ws: WebSocket): void {
    this.host.closed(ws);
  }

  override alarm(): Promise<void> {
    return this.host.alarm();
  }
}
