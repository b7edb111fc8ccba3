/**
 * `/socket.io/`: Engine.IO handshakes, polling requests and WebSocket upgrades.
 * Polling requests are forwarded to the PollingSessionObject named by their sid;
 * WebSockets stay in this Worker.
 */
import { Hono } from "hono";
import { defaultAppId, isConfiguredApp, readConfig, workerVersion, type Env } from "../config.ts";
import { EngineError, engineErrorResponse } from "../engine/errors.ts";
import { parseEngineQuery } from "../engine/request.ts";
import { isWellFormedId, randomId } from "../ids.ts";
import { createLogger } from "../log.ts";
import { serveWebSocket } from "../transports/websocket.ts";
import { HANDSHAKE_HEADERS } from "../../durable-objects/polling-session.ts";

export const socketIoRoutes = new Hono<{ Bindings: Env }>();

/** Socket.IO clients send credentials: echo the Origin rather than `*` when there is one. */
function corsHeaders(request: Request): Record<string, string> {
  const origin = request.headers.get("origin");
  return origin
    ? { "access-control-allow-origin": origin, "access-control-allow-credentials": "true", vary: "Origin" }
    : { "access-control-allow-origin": "*" };
}

/** Only the Worker may mark a request as a handshake; a client sending these headers must not reset a session. */
function withoutHandshakeHeaders(request: Request): Request {
  const forwarded = new Request(request);
  for (const name of Object.values(HANDSHAKE_HEADERS)) forwarded.headers.delete(name);
  return forwarded;
}

function withHeaders(response: Response, headers: Record<string, string>): Response {
  if (response.status === 101) return response;
  const copy = new Response(response.body, response);
  for (const [name, value] of Object.entries(headers)) copy.headers.set(name, value);
  return copy;
}

socketIoRoutes.on(["GET", "POST", "OPTIONS", "PUT", "DELETE", "PATCH"], ["/socket.io", "/socket.io/"], async (c) => {
  const request = c.req.raw;
  const env = c.env;
  const config = readConfig(env);
  const cors = corsHeaders(request);
  if (request.method === "OPTIONS") {
    return new Response(null, {
      status: 204,
      headers: {
        ...cors,
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": request.headers.get("access-control-request-headers") ?? "Content-Type",
        "access-control-max-age": "86400",
      },
    });
  }
  const query = parseEngineQuery(new URL(request.url));
  if ("code" in query) return engineErrorResponse(query, cors);
  const appId = query.appId ?? defaultAppId(config);
  if (query.appId !== null && !isConfiguredApp(config, query.appId)) {
    return engineErrorResponse(EngineError.FORBIDDEN, cors, `unknown app ${JSON.stringify(query.appId)}`);
  }
  const isUpgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
  if (query.transport === "websocket" && (!isUpgrade || request.method !== "GET")) {
    return engineErrorResponse(EngineError.BAD_REQUEST, cors);
  }

  if (query.sid !== null) {
    if (!isWellFormedId(query.sid)) return engineErrorResponse(EngineError.UNKNOWN_SID, cors);
    const polling = env.POLLING.getByName(query.sid);
    if (query.transport === "polling") return withHeaders(await polling.fetch(withoutHandshakeHeaders(request)), cors);
    if (!(await polling.canUpgrade())) return engineErrorResponse(EngineError.UNKNOWN_SID, cors);
    const cookie = request.headers.get("cookie");
    return serveWebSocket(env, config, c.executionCtx, { version: query.version, sid: query.sid, appId, cookie, upgradeFrom: polling });
  }

  if (query.transport === "polling" && request.method !== "GET") {
    return engineErrorResponse(EngineError.BAD_HANDSHAKE_METHOD, cors);
  }
  const sid = randomId();
  const admission = env.APP.getByName(appId).admit(sid, config.maxClients, workerVersion(env));
  // Without a limit nobody can be refused: count the connection without making the handshake wait.
  if (config.maxClients === 0) c.executionCtx.waitUntil(admission);
  else if (!(await admission)) {
    createLogger(config.devMode).warn("connection_refused", { appId, reason: "MAX_CLIENTS", maxClients: config.maxClients });
    return engineErrorResponse(EngineError.FORBIDDEN, cors, `too many clients: MAX_CLIENTS (${config.maxClients}) reached`);
  }
  if (query.transport === "websocket") {
    const cookie = request.headers.get("cookie");
    return serveWebSocket(env, config, c.executionCtx, { version: query.version, sid, appId, cookie, upgradeFrom: null });
  }
  const handshake = new Request(request);
  handshake.headers.set(HANDSHAKE_HEADERS.sid, sid);
  handshake.headers.set(HANDSHAKE_HEADERS.appId, appId);
  return withHeaders(await env.POLLING.getByName(sid).fetch(handshake), cors);
});
