/**
 * Wires a client's Engine.IO connection to its Socket.IO session and starts both,
 * whatever holds the client: a connection host (WebSocket) and a PollingSessionObject
 * both start, restore and resume sessions here.
 */
import { channelGateway } from "../channels/gateway.ts";
import type { Config, Env } from "../config.ts";
import { leaseRenewalInterval } from "../engine/admission.ts";
import { EngineConnection } from "../engine/connection.ts";
import { randomId } from "../ids.ts";
import { createLogger } from "../log.ts";
import type { Transport } from "../engine/transport.ts";
import type { EngineVersion } from "../protocol/engineio.ts";
import { revisionFor } from "../protocol/socketio.ts";
import type { SubscriberAddress } from "../channels/delivery.ts";
import type { LocalSubscriptions } from "../channels/local-subscriptions.ts";
import { Session, type SessionHandover, type SessionState } from "./session.ts";

export interface ClientHandshake {
  version: EngineVersion;
  sid: string;
  appId: string;
  cookie: string | null;
}

export interface StartedSession {
  engine: EngineConnection;
  session: Session;
  /** The channels a handed-over session joined again (none for a new one). */
  rejoined: Promise<string[]>;
  /** Moves the session to another transport: stops heartbeats and lease renewal here, leaving nothing. */
  handOver(): SessionHandover;
}

/**
 * Where the session comes from: new, with the Socket.IO packets the client sent
 * before it existed (a revision 5 CONNECT), handed over by another transport, or
 * restored where it ran (a connection host woken from hibernation: no calls at all).
 */
export type SessionOrigin = { early: string[] } | { handover: SessionHandover } | { restore: SessionState };

export function startSession(
  env: Env,
  config: Config,
  handshake: ClientHandshake,
  origin: SessionOrigin,
  transport: Transport & {
    waitUntil(promise: Promise<unknown>): void;
    /** Where channels deliver to this session, and the subscriptions there its frames are fanned out from. */
    at: SubscriberAddress;
    local: LocalSubscriptions;
    /**
     * "host": a connection host runs heartbeats and lease renewals from its alarm for
     * all its sockets, so the session keeps no timer. Default "timers".
     */
    heartbeat?: "timers" | "host";
    /** The session's state() changed. */
    onChange?(): void;
  },
): StartedSession {
  const log = createLogger(config.devMode);
  const revision = revisionFor(handshake.version);
  // Revision 4 clients take the engine sid as their socket id; revision 5 gets its own.
  const carried = "handover" in origin ? origin.handover : "restore" in origin ? origin.restore : null;
  const socketId = carried ? carried.socketId : revision === 4 ? handshake.sid : randomId();
  const heartbeat = transport.heartbeat ?? "timers";
  const app = env.APP.getByName(handshake.appId);
  let handedOver = false;
  // Keeps this connection's admission lease alive (see AppObject).
  const renewal =
    heartbeat === "timers"
      ? setInterval(() => transport.waitUntil(app.renew(handshake.sid).catch(() => {})), leaseRenewalInterval(config.maxClients))
      : undefined;
  const engine: EngineConnection = new EngineConnection({
    version: handshake.version,
    pingInterval: config.pingInterval,
    pingTimeout: config.pingTimeout,
    heartbeat,
    send: (frames) => transport.send(frames),
    onMessage: (text) => session.receive(text),
    onClose: (reason) => {
      clearInterval(renewal);
      session.end(reason);
      transport.close(reason);
      log.debug("disconnected", { sid: handshake.sid, socketId, reason });
      transport.waitUntil(
        app
          .release(handshake.sid)
          .catch((error: unknown) => log.warn("release_failed", { sid: handshake.sid, error: String(error) })),
      );
    },
  });
  const session: Session = new Session({
    revision,
    socketId,
    config,
    log,
    gateway: channelGateway(env, config, handshake.appId, handshake.cookie, transport.at, transport.local),
    // After a handover the engine is detached; frames still arriving go to the transport, which forwards them.
    send: (frames) => (handedOver ? transport.send(frames) : engine.send(frames)),
    close: (reason) => engine.close(reason),
    ...(transport.onChange && { onChange: transport.onChange }),
  });
  if (!("restore" in origin)) log.debug("connected", { sid: handshake.sid, socketId, version: handshake.version });
  engine.startHeartbeat();
  let rejoined: Promise<string[]> = Promise.resolve([]);
  if ("restore" in origin) {
    session.restore(origin.restore);
  } else if ("handover" in origin) {
    rejoined = session.resume(origin.handover);
  } else {
    session.start();
    for (const text of origin.early) engine.receive({ type: "message", data: text });
  }
  const handOver = () => {
    handedOver = true;
    clearInterval(renewal);
    engine.detach();
    log.debug("handed_over", { sid: handshake.sid, socketId });
    return session.handOver();
  };
  return { engine, session, rejoined, handOver };
}
