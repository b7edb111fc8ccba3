/**
 * PollingSessionObject: the state of one HTTP long-polling client, named by its
 * Engine.IO sid (polling needs state across requests, and any Worker may receive
 * any request).
 *
 * To keep idle clients free, this object only carries the Engine.IO handshake
 * until the client upgrades to WebSocket; the Socket.IO session then starts in the
 * Worker holding the WebSocket, with whatever the client sent meanwhile. A client
 * that does not probe within UPGRADE_GRACE (WebSocket blocked, or `upgrade: false`)
 * is served entirely from here: correct, but this object stays awake for it.
 */
import { DurableObject } from "cloudflare:workers";
import { readConfig, type Config, type Env } from "../worker/config.ts";
import { EngineConnection, openPacketFor } from "../worker/engine/connection.ts";
import { EngineError, engineErrorResponse } from "../worker/engine/errors.ts";
import { ProtocolError } from "../worker/protocol/errors.ts";
import {
  decodeJsonpBody,
  decodePayload,
  encodeJsonpResponse,
  encodePayload,
  type EnginePacket,
  type EngineVersion,
} from "../worker/protocol/engineio.ts";
import { startSession, type StartedSession } from "../worker/session/start.ts";

/** Headers the Worker sets when it forwards a handshake to a fresh object. */
export const HANDSHAKE_HEADERS = { sid: "x-echo-sid", appId: "x-echo-app" } as const;

/** How long a started upgrade may take before the client is served over polling after all. */
const UPGRADE_TIMEOUT_MS = 10_000;

type Phase =
  | "handshaking" // waiting to see whether the client upgrades
  | "upgrading" // probe answered; the client is switching to its WebSocket
  | "polling" // the Socket.IO session runs here
  | "upgraded" // the Worker holding the WebSocket owns the session
  | "closed";

interface PendingPoll {
  jsonp: string | null;
  respond(response: Response): void;
}

export class PollingSessionObject extends DurableObject<Env> {
  private phase: Phase | null = null;
  private version: EngineVersion = 4;
  private sid = "";
  private appId = "";
  private cookie: string | null = null;
  private outbox: EnginePacket[] = [];
  private pendingPoll: PendingPoll | null = null;
  /** Socket.IO packets received before the session started (e.g. a revision 5 CONNECT). */
  private early: string[] = [];
  private session: StartedSession | null = null;
  /** Heartbeat and packet handling before the session exists. */
  private preSession: EngineConnection | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  private get config(): Config {
    return readConfig(this.env);
  }

  override async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const jsonp = url.searchParams.get("j");
    if (request.headers.has(HANDSHAKE_HEADERS.sid)) return this.handshake(request, jsonp);
    if (this.phase === null || this.phase === "closed") return engineErrorResponse(EngineError.UNKNOWN_SID);
    if (this.phase === "upgraded") return engineErrorResponse(EngineError.BAD_REQUEST);
    if (request.method === "GET") return this.poll(jsonp);
    if (request.method === "POST") return this.receive(request, jsonp);
    return engineErrorResponse(EngineError.BAD_REQUEST);
  }

  /** The session exists and is not served here yet, so a WebSocket may take it over. */
  private get upgradable(): boolean {
    return this.phase === "handshaking" || this.phase === "upgrading";
  }

  async canUpgrade(): Promise<boolean> {
    return this.upgradable;
  }

  /** The client sent `2probe` on its new WebSocket: release its pending poll with a noop. */
  async probe(): Promise<boolean> {
    if (!this.upgradable) return false;
    this.phase = "upgrading";
    this.setTimer(UPGRADE_TIMEOUT_MS, () => this.servePolling());
    this.flushPoll([{ type: "noop" }]);
    return true;
  }

  /**
   * The client sent `5`: hand over what it sent so far, and its handshake cookie
   * (a WebSocket opened by a non-browser client may carry none); this object is done.
   */
  async completeUpgrade(): Promise<{ early: string[]; cookie: string | null } | null> {
    if (this.phase !== "upgrading") return null;
    this.phase = "upgraded";
    clearTimeout(this.timer);
    this.preSession?.close("upgraded");
    this.flushPoll([{ type: "noop" }]);
    const early = this.early;
    this.early = [];
    return { early, cookie: this.cookie };
  }

  private handshake(request: Request, jsonp: string | null): Response {
    const url = new URL(request.url);
    this.version = url.searchParams.get("EIO") === "4" ? 4 : 3;
    this.sid = request.headers.get(HANDSHAKE_HEADERS.sid)!;
    this.appId = request.headers.get(HANDSHAKE_HEADERS.appId)!;
    this.cookie = request.headers.get("cookie");
    this.phase = "handshaking";
    const config = this.config;
    this.preSession = this.engineWithoutSession();
    this.preSession.startHeartbeat();
    this.setTimer(config.upgradeGrace, () => this.servePolling());
    const response = this.payloadResponse([openPacketFor(config, this.sid, this.version, ["websocket"])], jsonp);
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
      write: (packets) => this.enqueue(packets),
      writeFrames: (frames) => this.enqueueFrames(frames),
      onMessage: (text) => this.early.push(text),
      onClose: (reason) => {
        if (this.upgradable) this.closeSession(reason);
      },
    });
  }

  /** No upgrade came: the Socket.IO session runs here, over polling. */
  private servePolling(): void {
    if (!this.upgradable) return;
    this.phase = "polling";
    this.preSession?.close("serving over polling");
    this.preSession = null;
    const early = this.early;
    this.early = [];
    this.session = startSession(
      this.env,
      this.config,
      { version: this.version, sid: this.sid, appId: this.appId, cookie: this.cookie },
      early,
      {
        write: (packets) => this.enqueue(packets),
        writeFrames: (frames) => this.enqueueFrames(frames),
        close: (reason) => this.closeSession(reason),
        waitUntil: (promise) => this.ctx.waitUntil(promise),
      },
    );
  }

  private poll(jsonp: string | null): Response | Promise<Response> {
    if (this.pendingPoll) {
      // Two overlapping GETs mean a confused client: end the session, as engine.io does.
      this.flushPoll([{ type: "close" }]);
      this.terminate("overlapping polls");
      return engineErrorResponse(EngineError.BAD_REQUEST);
    }
    if (this.phase === "upgrading") return this.payloadResponse([{ type: "noop" }], jsonp);
    if (this.outbox.length > 0) {
      const packets = this.outbox;
      this.outbox = [];
      return this.payloadResponse(packets, jsonp);
    }
    return new Promise((respond) => (this.pendingPoll = { jsonp, respond }));
  }

  private async receive(request: Request, jsonp: string | null): Promise<Response> {
    const config = this.config;
    const declared = Number(request.headers.get("content-length") ?? 0);
    const body = declared > config.maxPayload ? null : await request.text();
    if (body === null || body.length > config.maxPayload) {
      this.terminate("payload too large");
      return new Response("Payload Too Large", { status: 413 });
    }
    let packets: EnginePacket[];
    try {
      packets = decodePayload(jsonp !== null ? decodeJsonpBody(body) : body, this.version);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.terminate(`protocol error: ${error.message}`);
      return engineErrorResponse(EngineError.BAD_REQUEST, {}, `malformed payload: ${error.message}`);
    }
    const engine = this.session?.engine ?? this.preSession;
    for (const packet of packets) {
      if (packet.type === "upgrade") {
        this.terminate("upgrade packet over polling");
        return engineErrorResponse(EngineError.BAD_REQUEST);
      }
      engine?.receive(packet);
    }
    return new Response("ok", { headers: { "content-type": "text/html; charset=UTF-8" } });
  }

  private enqueue(packets: EnginePacket[]): void {
    if (this.phase === "closed" || this.phase === "upgraded") return;
    this.outbox.push(...packets);
    if (this.pendingPoll && this.phase !== "upgrading") {
      const outgoing = this.outbox;
      this.outbox = [];
      this.flushPoll(outgoing);
    }
  }

  /** Channel frames are `4<socket.io packet>`; polling re-frames them into its payload. */
  private enqueueFrames(frames: string[]): void {
    this.enqueue(frames.map((frame) => ({ type: "message", data: frame.slice(1) })));
  }

  private flushPoll(packets: EnginePacket[]): void {
    const poll = this.pendingPoll;
    if (!poll) return;
    this.pendingPoll = null;
    poll.respond(this.payloadResponse(packets, poll.jsonp));
  }

  private payloadResponse(packets: EnginePacket[], jsonp: string | null): Response {
    const payload = encodePayload(packets, this.version);
    if (jsonp !== null) {
      return new Response(encodeJsonpResponse(payload, jsonp), {
        headers: { "content-type": "text/javascript; charset=UTF-8" },
      });
    }
    return new Response(payload, { headers: { "content-type": "text/plain; charset=UTF-8" } });
  }

  /** Ends the session from this side (protocol violation, overlap, oversize). */
  private terminate(reason: string): void {
    if (this.session) this.session.engine.close(reason);
    else this.closeSession(reason);
  }

  private closeSession(reason: string): void {
    if (this.phase === "closed") return;
    const hadSession = this.session !== null;
    this.phase = "closed";
    clearTimeout(this.timer);
    this.preSession?.close(reason);
    this.flushPoll([{ type: "close" }]);
    this.outbox = [];
    if (!hadSession) {
      // startSession's close path releases the admission; without a session we do.
      this.ctx.waitUntil(this.env.APP.getByName(this.appId).release(this.sid).catch(() => {}));
    }
  }

  private setTimer(ms: number, run: () => void): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(run, ms);
  }
}
