/**
 * The WebSocket transport, held by the Worker invocation that accepted it, so an
 * idle client keeps no Durable Object awake. Either a direct connection
 * (`transport=websocket`, no sid) or the upgrade of a polling session, whose
 * Durable Object hands over what the client sent before the switch, or the whole
 * running session when it was already served over polling.
 */
import type { Config, Env } from "../config.ts";
import type { PollingSessionObject, UpgradeHandover } from "../../durable-objects/polling-session.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { openPacketFor } from "../engine/connection.ts";
import { createLogger } from "../log.ts";
import { decodeFrame, encodeFrame, type EnginePacket, type EngineVersion } from "../protocol/engineio.ts";
import type { SessionHandover } from "../session/session.ts";
import { startSession, type SessionOrigin, type StartedSession } from "../session/start.ts";

export interface WebSocketClient {
  version: EngineVersion;
  sid: string;
  appId: string;
  cookie: string | null;
  /** The polling session being upgraded and this attempt's token, or null for a direct WebSocket connection. */
  upgradeFrom: { polling: DurableObjectStub<PollingSessionObject>; token: string } | null;
}

/** WebSocket close code for why we end a connection (clients reconnect either way). */
function closeCodeFor(reason: string): number {
  if (reason.startsWith("protocol error")) return 1002;
  if (reason.startsWith("payload too large")) return 1009;
  return 1000;
}

function acceptedPair(): [client: WebSocket, socket: WebSocket] {
  const [client, socket] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  socket.accept();
  return [client, socket];
}

// Refuse permessage-deflate: workerd would otherwise compress every frame, however
// small, and inflating small frames is what limits clients (DESIGN.md, measured).
// workerd documents an empty extensions header on the 101 as the refusal. Locally
// it has no effect (measured: wrangler dev 4.164 negotiates deflate on the entry
// proxy and on the worker's own port alike, with or without the
// no_web_socket_compression flag), so the bench's clients do not offer it.
function switchingProtocols(client: WebSocket): Response {
  return new Response(null, { status: 101, webSocket: client, headers: { "sec-websocket-extensions": "" } });
}

/** A WebSocket for a sid whose session is already upgraded (or upgrading): accepted and closed, as engine.io does. */
export function acceptAndClose(reason: string): Response {
  const [client, socket] = acceptedPair();
  socket.close(1000, reason);
  return switchingProtocols(client);
}

export function serveWebSocket(
  env: Env,
  config: Config,
  ctx: { waitUntil(promise: Promise<unknown>): void },
  client: WebSocketClient,
): Response {
  const [clientEnd, socket] = acceptedPair();
  const log = createLogger(config.devMode);
  let started: StartedSession | null = null;
  let open = true;
  /** While a handed-over session catches up, what it sends waits behind the frames still arriving at the polling side. */
  let held: (string | Uint8Array)[] | null = null;

  const send = (frames: (string | Uint8Array)[]) => {
    if (!open) return;
    try {
      for (const frame of frames) socket.send(frame);
    } catch {
      // The socket closed under us; its close event ends the session.
    }
  };
  // Channel frames are already Engine.IO message frames, identical for EIO 3 and 4.
  const writeFrames = (frames: (string | Uint8Array)[]) => {
    if (held) held.push(...frames);
    else send(frames);
  };
  const write = (packets: EnginePacket[]) => writeFrames(packets.map((packet) => encodeFrame(packet, client.version)));
  const closeSocket = (reason: string) => {
    if (!open) return;
    open = false;
    try {
      socket.close(closeCodeFor(reason), reason.slice(0, 120));
    } catch {
      // already closed
    }
  };
  /** Ends the connection: through the session when there is one, so it leaves its channels. */
  const fail = (reason: string) => (started ? started.engine.close(reason) : closeSocket(reason));
  const begin = (origin: SessionOrigin) => {
    started = startSession(env, config, client, origin, {
      write,
      writeFrames,
      close: closeSocket,
      waitUntil: (promise) => ctx.waitUntil(promise),
    });
  };

  // Until the session starts, frames wait their turn: the upgrade steps await the
  // polling object, and a client sends its first packets right after `5`.
  let upgrading: Promise<void> = Promise.resolve();
  socket.addEventListener("message", (event) => {
    const data = event.data as string | ArrayBuffer;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > config.maxPayload) return fail(`payload too large: frame over ${config.maxPayload} bytes`);
    let packet: EnginePacket;
    try {
      packet = decodeFrame(data, client.version);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      return fail(`protocol error: ${error.message}`);
    }
    if (started) return started.engine.receive(packet);
    upgrading = upgrading.then(() => (started ? started.engine.receive(packet) : upgradeStep(packet)));
  });

  const upgrade = client.upgradeFrom;
  // engine.io's upgradeTimeout: a WebSocket that never probes, or probes and never sends `5`, is closed.
  const upgradeTimer = upgrade
    ? setTimeout(() => {
        log.debug("upgrade_timeout", { sid: client.sid });
        closeSocket(`upgrade timeout: not completed within ${config.upgradeTimeout} ms`);
      }, config.upgradeTimeout)
    : undefined;

  // The upgrade handshake: `2probe` -> `3probe` once the polling side agrees, then `5`.
  const upgradeStep = async (packet: EnginePacket) => {
    if (!upgrade || !open) return;
    if (packet.type === "ping" && packet.data === "probe") {
      if (await upgrade.polling.probe(upgrade.token)) return write([{ type: "pong", data: "probe" }]);
      return closeSocket("session is no longer upgradable");
    }
    if (packet.type === "upgrade") {
      // Presence member data is `unknown` JSON, which the RPC stub's types cannot express.
      const handover = (await upgrade.polling.completeUpgrade(upgrade.token)) as UpgradeHandover | null;
      if (handover === null) return closeSocket("session is no longer upgradable");
      clearTimeout(upgradeTimer);
      client.cookie ??= handover.cookie;
      send(handover.undelivered.map((packet) => encodeFrame(packet, client.version)));
      if (handover.session) return resume(upgrade.polling, handover.session);
      return begin({ early: handover.early });
    }
    if (packet.type !== "noop") closeSocket(`protocol error: unexpected ${packet.type} packet during upgrade`);
  };

  /** Continues the session the polling object ran, in order: its last frames first, then ours. */
  const resume = async (polling: DurableObjectStub<PollingSessionObject>, handover: SessionHandover) => {
    held = [];
    begin({ handover });
    try {
      send(await polling.finishHandover(await started!.rejoined));
    } catch (error) {
      log.warn("handover_failed", { sid: client.sid, error: String(error) });
    }
    const waiting = held;
    held = null;
    send(waiting);
  };

  const ended = () => {
    open = false;
    clearTimeout(upgradeTimer);
    started?.engine.close("transport close");
  };
  socket.addEventListener("close", ended);
  socket.addEventListener("error", ended);

  if (!upgrade) {
    write([openPacketFor(config, client.sid, client.version, [])]);
    begin({ early: [] });
  }
  return switchingProtocols(clientEnd);
}
