/**
 * The WebSocket transport, held by the Worker invocation that accepted it, so an
 * idle client keeps no Durable Object awake. Either a direct connection
 * (`transport=websocket`, no sid) or the upgrade of a polling session, whose
 * Durable Object hands over what the client sent before the switch.
 */
import type { Config, Env } from "../config.ts";
import type { PollingSessionObject } from "../../durable-objects/polling-session.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { decodeFrame, encodeFrame, openPacket, type EnginePacket, type EngineVersion } from "../protocol/engineio.ts";
import { startSession, type StartedSession } from "../session/start.ts";

export interface WebSocketClient {
  version: EngineVersion;
  sid: string;
  appId: string;
  cookie: string | null;
  /** The polling session being upgraded, or null for a direct WebSocket connection. */
  upgradeFrom: DurableObjectStub<PollingSessionObject> | null;
}

const CLOSE_NORMAL = 1000;
const CLOSE_PROTOCOL_ERROR = 1002;
const CLOSE_TOO_BIG = 1009;

export function serveWebSocket(
  env: Env,
  config: Config,
  ctx: { waitUntil(promise: Promise<unknown>): void },
  client: WebSocketClient,
): Response {
  const [clientEnd, socket] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  socket.accept();
  let started: StartedSession | null = null;
  let open = true;

  const write = (packets: EnginePacket[]) => {
    if (!open) return;
    try {
      for (const packet of packets) socket.send(encodeFrame(packet, client.version));
    } catch {
      // The socket closed under us; its close event ends the session.
    }
  };
  // Channel frames are already Engine.IO message frames, identical for EIO 3 and 4.
  const writeFrames = (frames: string[]) => {
    if (!open) return;
    try {
      for (const frame of frames) socket.send(frame);
    } catch {
      // as above
    }
  };
  const closeSocket = (code: number, reason: string) => {
    if (!open) return;
    open = false;
    try {
      socket.close(code, reason.slice(0, 120));
    } catch {
      // already closed
    }
  };
  const begin = (buffered: string[]) => {
    started = startSession(env, config, client, {
      write,
      writeFrames,
      close: (reason) => closeSocket(reason.startsWith("protocol error") ? CLOSE_PROTOCOL_ERROR : CLOSE_NORMAL, reason),
      waitUntil: (promise) => ctx.waitUntil(promise),
    });
    started.engine.startHeartbeat();
    started.session.start();
    for (const text of buffered) started.engine.receive({ type: "message", data: text });
  };

  socket.addEventListener("message", async (event) => {
    const data = event.data as string | ArrayBuffer;
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (size > config.maxPayload) {
      started?.engine.close("payload too large");
      return closeSocket(CLOSE_TOO_BIG, `frame larger than ${config.maxPayload} bytes`);
    }
    let packet: EnginePacket;
    try {
      packet = decodeFrame(data, client.version);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      started?.engine.close(`protocol error: ${error.message}`);
      return closeSocket(CLOSE_PROTOCOL_ERROR, `protocol error: ${error.message}`);
    }
    if (started) return started.engine.receive(packet);
    await upgradeStep(packet);
  });

  // The upgrade handshake: `2probe` -> `3probe` once the polling side agrees, then `5`.
  const upgradeStep = async (packet: EnginePacket) => {
    const polling = client.upgradeFrom;
    if (!polling) return;
    if (packet.type === "ping" && packet.data === "probe") {
      if (await polling.probe()) return write([{ type: "pong", data: "probe" }]);
      return closeSocket(CLOSE_NORMAL, "session is no longer upgradable");
    }
    if (packet.type === "upgrade") {
      const buffered = await polling.completeUpgrade();
      if (buffered === null) return closeSocket(CLOSE_NORMAL, "session is no longer upgradable");
      return begin(buffered);
    }
    if (packet.type !== "noop") closeSocket(CLOSE_PROTOCOL_ERROR, `unexpected ${packet.type} packet during upgrade`);
  };

  const ended = () => {
    open = false;
    started?.engine.close("transport close");
  };
  socket.addEventListener("close", ended);
  socket.addEventListener("error", ended);

  if (!client.upgradeFrom) {
    write([
      openPacket(
        {
          sid: client.sid,
          upgrades: [],
          pingInterval: config.pingInterval,
          pingTimeout: config.pingTimeout,
          maxPayload: config.maxPayload,
        },
        client.version,
      ),
    ]);
    begin([]);
  }
  return new Response(null, { status: 101, webSocket: clientEnd });
}
