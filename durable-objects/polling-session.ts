/**
 * PollingSessionObject: the state of one HTTP long-polling client, named by its
 * Engine.IO sid (polling needs state across requests, and any Worker may receive
 * any request).
 *
 * To keep idle clients free, this object mostly carries the Engine.IO handshake
 * until the client upgrades to WebSocket; the Socket.IO session then starts in the
 * connection host holding the WebSocket, with whatever the client sent meanwhile. A client
 * that does not upgrade within UPGRADE_GRACE (WebSocket blocked, a slow network,
 * `upgrade: false`) is served from here, and may still upgrade later: the running
 * session is then handed over to the WebSocket as plain data (SessionHandover).
 * While the session runs here, this object is its channels' delivery address
 * (`deliver`, with the sid as its incarnation: a sid is never reused).
 *
 * The session is bound to the address that opened it: a request from anywhere else
 * is answered as if the sid did not exist, and changes nothing. A client takes a
 * MAX_CLIENTS slot only once it proves it is alive (its first request after the
 * handshake), so bare handshakes cannot exhaust the limit.
 */
import { DurableObject } from "cloudflare:workers";
import type { ChannelDelivery, DeliveryReceipt, DeliveryTarget } from "../worker/channels/delivery.ts";
import { LocalSubscriptions } from "../worker/channels/local-subscriptions.ts";
import { readConfig, type Config, type Env } from "../worker/config.ts";
import { admitConnection, refuseConnection } from "../worker/engine/admission.ts";
import { CLIENT_CLOSE, EngineConnection, openPacketFor } from "../worker/engine/connection.ts";
import { EngineError, engineErrorResponse } from "../worker/engine/errors.ts";
import { POLLING_HEADERS } from "../worker/engine/forwarding.ts";
import { readBodyWithin } from "../worker/http/body.ts";
import { createLogger } from "../worker/log.ts";
import { ProtocolError } from "../worker/protocol/errors.ts";
import {
  decodeJsonpBody,
  decodePayload,
  encodeJsonpResponse,
  encodeTextFrame,
  payloadOf,
  type EnginePacket,
  type EngineVersion,
} from "../worker/protocol/engineio.ts";
import type { SessionHandover } from "../worker/session/session.ts";
import { startSession, type StartedSession } from "../worker/session/start.ts";

type Phase =
  | "handshaking" // no session yet: waiting for the upgrade, UPGRADE_GRACE and the first sign of life
  | "polling" // the Socket.IO session runs here
  | "upgraded" // the session moved to the WebSocket
  | "closed";

/** A WebSocket opened with this sid; only one at a time, named by a token the Worker holds. */
interface UpgradeAttempt {
  token: string;
  probed: boolean;
  timer: ReturnType<typeof setTimeout>;
}

export type UpgradeStart =
  | { ok: true; token: string; appId: string; version: EngineVersion }
  /** unknown: no such session here (for this address); taken: upgraded or upgrading already; forbidden: MAX_CLIENTS. */
  | { ok: false; error: "unknown" | "taken" | "forbidden" };

/** What the WebSocket needs to carry on the client's session after `5`. */
export interface UpgradeHandover {
  appId: string;
  cookie: string | null;
  /** Socket.IO packets sent before any session existed (a revision 5 CONNECT), when none ran here. */
  early: string[];
  /** The session that ran here, when there was one. */
  session: SessionHandover | null;
  /**
   * Frames queued here that the client never fetched and still waits for: messages,
   * and the pong to a ping it sent meanwhile (an Engine.IO 3 client without it gives
   * up on the connection). Our own pings are not carried: the WebSocket side pings anew.
   */
  undelivered: string[];
}

interface PendingPoll {
  jsonp: string | null;
  respond(response: Response): void;
}

const utf8 = new TextDecoder();
/** The type digits a text frame starts with (the same in Engine.IO 3 and 4). */
const MESSAGE_TYPE = encodeTextFrame({ type: "message" }, 4);
const PONG_TYPE = encodeTextFrame({ type: "pong" }, 4);

export class PollingSessionObject extends DurableObject<Env> implements DeliveryTarget {
  private phase: Phase | null = null;
  private version: EngineVersion = 4;
  private sid = "";
  private appId = "";
  private address = "";
  private cookie: string | null = null;
  /** Text frames waiting for the client's next poll. */
  private outbox: string[] = [];
  private outboxSize = 0;
  private pendingPoll: PendingPoll | null = null;
  /** Socket.IO packets received before the session started (e.g. a revision 5 CONNECT). */
  private early: string[] = [];
  private session: StartedSession | null = null;
  /** Heartbeat and packet handling before the session exists. */
  private preSession: EngineConnection | null = null;
  private graceTimer: ReturnType<typeof setTimeout> | undefined;
  private graceOver = false;
  private upgrade: UpgradeAttempt | null = null;
  /** The MAX_CLIENTS admission, asked for on the client's first request after the handshake. */
  private admission: Promise<boolean> | null = null;
  private admitted = false;
  /** Channel frames that reached the handed-over session after the handover, for the WebSocket. */
  private forwarded: string[] = [];
  /** The session's subscriptions, which channel deliveries fan out to. */
  private readonly local = new LocalSubscriptions();

  private get config(): Config {
    return readConfig(this.env);
  }

  override async fetch(request: Request): Promise<Response> {
    const jsonp = new URL(request.url).searchParams.get("j");
    if (request.headers.has(POLLING_HEADERS.sid)) return this.handshake(request, jsonp);
    if (!this.isOwner(request.headers.get(POLLING_HEADERS.address))) return engineErrorResponse(EngineError.UNKNOWN_SID);
    // engine.io's answer to polling on a sid whose transport is now a WebSocket.
    if (this.phase === "upgraded") return engineErrorResponse(EngineError.BAD_REQUEST);
    if (!(await this.admit())) return refuseConnection(this.config, this.appId);
    if (request.method === "GET") return this.poll(jsonp);
    if (request.method === "POST") return this.receive(request, jsonp);
    return engineErrorResponse(EngineError.BAD_REQUEST);
  }

  /** A channel's batch for this session's socket (toOthers applied by LocalSubscriptions). */
  async deliver(delivery: ChannelDelivery): Promise<DeliveryReceipt> {
    return { incarnation: this.sid, ...this.local.deliver(delivery) };
  }

  /** A WebSocket opened with this sid from `address`: at most one upgrade runs at a time, and only for the owner. */
  async beginUpgrade(address: string): Promise<UpgradeStart> {
    if (!this.isOwner(address)) return { ok: false, error: "unknown" };
    if (this.phase === "upgraded" || this.upgrade) return { ok: false, error: "taken" };
    if (!(await this.admit())) return { ok: false, error: "forbidden" };
    if (this.phase === "closed") return { ok: false, error: "unknown" };
    const token = crypto.randomUUID();
    // The host closes a WebSocket that does not complete in time; this frees the session for polling if the host is gone.
    const timer = setTimeout(() => this.abandonUpgrade(token), this.config.upgradeTimeout);
    this.upgrade = { token, probed: false, timer };
    return { ok: true, token, appId: this.appId, version: this.version };
  }

  /** The client sent `2probe` on its new WebSocket: release its pending poll with a noop, as engine.io does. */
  async probe(token: string): Promise<boolean> {
    if (this.upgrade?.token !== token) return false;
    this.upgrade.probed = true;
    this.flushPoll([this.frame({ type: "noop" })]);
    return true;
  }

  /**
   * The client sent `5`: the WebSocket owns the client from now on. Hands over what
   * it needs: the session (or what the client sent before there was one), undelivered
   * packets, and the handshake cookie (a WebSocket opened by a non-browser client may
   * carry none). A session that ran here keeps forwarding frames until finishHandover().
   */
  async completeUpgrade(token: string): Promise<UpgradeHandover | null> {
    const upgrade = this.upgrade;
    if (upgrade?.token !== token || !upgrade.probed) return null;
    clearTimeout(upgrade.timer);
    clearTimeout(this.graceTimer);
    this.upgrade = null;
    this.phase = "upgraded";
    this.flushPoll([this.frame({ type: "noop" })]);
    this.preSession?.detach();
    this.preSession = null;
    const undelivered = this.outbox.filter((frame) => frame.startsWith(MESSAGE_TYPE) || frame.startsWith(PONG_TYPE));
    this.outbox = [];
    this.outboxSize = 0;
    const early = this.early;
    this.early = [];
    return { appId: this.appId, cookie: this.cookie, early, session: this.session?.handOver() ?? null, undelivered };
  }

  /**
   * The WebSocket's resumed joins of `rejoined` returned (each channel finished its
   * deliveries here first, and delivers there from now on): ends what is left of the
   * session here and returns the frames that arrived in between.
   */
  async finishHandover(rejoined: string[]): Promise<string[]> {
    const started = this.session;
    if (this.phase !== "upgraded" || !started) return [];
    this.session = null;
    started.session.finishHandover(rejoined);
    started.session.end("handed over");
    const frames = this.forwarded;
    this.forwarded = [];
    return frames;
  }

  private isOwner(address: string | null): boolean {
    return this.phase !== null && this.phase !== "closed" && address === this.address;
  }

  private handshake(request: Request, jsonp: string | null): Response {
    const url = new URL(request.url);
    this.version = url.searchParams.get("EIO") === "4" ? 4 : 3;
    this.sid = request.headers.get(POLLING_HEADERS.sid)!;
    this.appId = request.headers.get(POLLING_HEADERS.appId)!;
    this.address = request.headers.get(POLLING_HEADERS.address) ?? "";
    this.cookie = request.headers.get("cookie");
    this.phase = "handshaking";
    const config = this.config;
    this.preSession = this.engineWithoutSession();
    this.preSession.startHeartbeat();
    this.graceTimer = setTimeout(() => {
      this.graceOver = true;
      this.maybeServePolling();
    }, config.upgradeGrace);
    const response = this.payloadResponse([this.frame(openPacketFor(config, this.sid, this.version, ["websocket"]))], jsonp);
    if (this.version === 3) {
      response.headers.append("set-cookie", `io=${this.sid}; Path=/; HttpOnly; SameSite=Strict`);
    }
    return response;
  }

  /** Before the session starts, pings are answered and messages kept for it. */
  private engineWithoutSession(): EngineConnection {
    const config = this.config;
    return new EngineConnection({
      version: this.version,
      pingInterval: config.pingInterval,
      pingTimeout: config.pingTimeout,
      send: (frames) => this.enqueue(frames),
      onMessage: (text) => this.early.push(text),
      onClose: (reason) => this.closeSession(reason),
    });
  }

  /** Takes a MAX_CLIENTS slot for this client, once; false when the app is full (the session is then closed). */
  private admit(): Promise<boolean> {
    this.admission ??= this.requestAdmission().catch((error: unknown) => {
      this.admission = null; // the next request asks again
      throw error;
    });
    return this.admission;
  }

  private async requestAdmission(): Promise<boolean> {
    if (!(await admitConnection(this.env, this.config, this.appId, this.sid, (promise) => this.ctx.waitUntil(promise)))) {
      this.closeSession("MAX_CLIENTS reached");
      return false;
    }
    this.admitted = true;
    if (this.phase === "closed") {
      this.release();
      return false;
    }
    this.maybeServePolling();
    return true;
  }

  /** No upgrade came within the grace and the client is alive: the Socket.IO session runs here, over polling. */
  private maybeServePolling(): void {
    if (this.phase !== "handshaking" || !this.graceOver || !this.admitted || this.upgrade) return;
    this.phase = "polling";
    this.preSession?.detach();
    this.preSession = null;
    const early = this.early;
    this.early = [];
    this.session = startSession(
      this.env,
      this.config,
      { version: this.version, sid: this.sid, appId: this.appId, cookie: this.cookie },
      { early },
      {
        send: (frames) => this.enqueue(frames),
        close: (reason) => this.closeSession(reason),
        waitUntil: (promise) => this.ctx.waitUntil(promise),
        at: { kind: "polling", name: this.sid, incarnation: this.sid },
        local: this.local,
      },
    );
  }

  /** The WebSocket did not complete the upgrade in time: the client carries on over polling. */
  private abandonUpgrade(token: string): void {
    if (this.upgrade?.token !== token) return;
    this.upgrade = null;
    this.maybeServePolling();
    if (this.outbox.length > 0) this.flushPoll(this.takeOutbox());
  }

  private poll(jsonp: string | null): Response | Promise<Response> {
    if (this.pendingPoll) {
      // Two overlapping GETs mean a confused client: end the session, as engine.io does.
      this.flushPoll([this.frame({ type: "close" })]);
      this.terminate("overlapping polls");
      return engineErrorResponse(EngineError.BAD_REQUEST);
    }
    if (this.upgrade?.probed) return this.payloadResponse([this.frame({ type: "noop" })], jsonp);
    if (this.outbox.length > 0) return this.payloadResponse(this.takeOutbox(), jsonp);
    return new Promise((respond) => (this.pendingPoll = { jsonp, respond }));
  }

  private async receive(request: Request, jsonp: string | null): Promise<Response> {
    const { maxPayload } = this.config;
    const bytes = await readBodyWithin(request, maxPayload);
    if (bytes === null) {
      this.terminate(`payload too large: polling body over ${maxPayload} bytes`);
      return new Response("Payload Too Large", { status: 413 });
    }
    let packets: EnginePacket[];
    try {
      const body = utf8.decode(bytes);
      packets = decodePayload(jsonp !== null ? decodeJsonpBody(body) : body, this.version);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.terminate(`protocol error: ${error.message}`);
      return engineErrorResponse(EngineError.BAD_REQUEST, {}, `malformed payload: ${error.message}`);
    }
    for (const packet of packets) {
      if (packet.type === "upgrade") {
        this.terminate("protocol error: upgrade packet over polling");
        return engineErrorResponse(EngineError.BAD_REQUEST);
      }
      (this.session?.engine ?? this.preSession)?.receive(packet);
    }
    return new Response("ok", { headers: { "content-type": "text/html; charset=UTF-8" } });
  }

  /** Transport.send: queued for the next poll; after a handover, kept for the WebSocket that continues the session. */
  private enqueue(frames: string[]): void {
    if (this.phase === "upgraded") return void this.forwarded.push(...frames);
    if (this.phase === "closed") return;
    for (const frame of frames) {
      this.outbox.push(frame);
      this.outboxSize += frame.length;
    }
    const limit = this.config.pollingOutboxLimit;
    if (this.outboxSize > limit) {
      // A client that keeps its session alive but never fetches would make this grow without end.
      createLogger(this.config.devMode).warn("polling_outbox_full", { sid: this.sid, appId: this.appId, limit });
      return this.terminate(`polling outbox over ${limit} bytes: the client stopped fetching`);
    }
    if (this.pendingPoll && !this.upgrade?.probed) this.flushPoll(this.takeOutbox());
  }

  private takeOutbox(): string[] {
    const frames = this.outbox;
    this.outbox = [];
    this.outboxSize = 0;
    return frames;
  }

  private flushPoll(frames: string[]): void {
    const poll = this.pendingPoll;
    if (!poll) return;
    this.pendingPoll = null;
    poll.respond(this.payloadResponse(frames, poll.jsonp));
  }

  private frame(packet: EnginePacket): string {
    return encodeTextFrame(packet, this.version);
  }

  private payloadResponse(frames: string[], jsonp: string | null): Response {
    const payload = payloadOf(frames, this.version);
    if (jsonp !== null) {
      return new Response(encodeJsonpResponse(payload, jsonp), {
        headers: { "content-type": "text/javascript; charset=UTF-8" },
      });
    }
    return new Response(payload, { headers: { "content-type": "text/plain; charset=UTF-8" } });
  }

  /** Ends the session from this side (protocol violation, overlap, oversize, full outbox). */
  private terminate(reason: string): void {
    if (this.session) this.session.engine.close(reason);
    else this.closeSession(reason);
  }

  private closeSession(reason: string): void {
    if (this.phase === "closed" || this.phase === "upgraded") return;
    const hadSession = this.session !== null;
    this.phase = "closed";
    clearTimeout(this.graceTimer);
    if (this.upgrade) clearTimeout(this.upgrade.timer);
    this.upgrade = null;
    this.preSession?.detach();
    this.preSession = null;
    this.session = null;
    // engine.io answers a client's own close packet with a noop; any other end with a close packet.
    this.flushPoll([this.frame({ type: reason === CLIENT_CLOSE ? "noop" : "close" })]);
    this.outbox = [];
    this.outboxSize = 0;
    createLogger(this.config.devMode).debug("polling_closed", { sid: this.sid, reason });
    // startSession's close path releases the admission; without a session we do.
    if (!hadSession && this.admitted) this.release();
  }

  private release(): void {
    this.ctx.waitUntil(this.env.APP.getByName(this.appId).release(this.sid).catch(() => {}));
  }
}
