/**
 * `/socket.io/`: Engine.IO handshakes, polling requests and WebSocket upgrades.
 * Polling requests are forwarded to the PollingSessionObject named by their sid,
 * with the client's address, which the session is bound to; WebSockets stay in
 * this Worker.
 */
import { Hono } from "hono";
import { defaultAppId, isConfiguredApp, readConfig, type Env } from "../config.ts";
import { admitConnection, refuseConnection } from "../engine/admission.ts";
import { EngineError, engineErrorResponse } from "../engine/errors.ts";
import { clientAddress, parseEngineQuery } from "../engine/request.ts";
import { isWellFormedId, randomId } from "../ids.ts";
import { acceptAndClose, serveWebSocket } from "../transports/websocket.ts";
import { WORKER_HEADERS } from "../../durable-objects/polling-session.ts";

export const socketIoRoutes = new Hono<{ Bindings: Env }>();

/** Socket.IO clients send credentials: echo the Origin rather than `*` when there is one. */
function corsHeaders(request: Request): Record<string, string> {
  const origin = request.headers.get("origin");
  return origin
    ? { "access-control-allow-origin": origin, "access-control-allow-credentials": "true", vary: "Origin" }
    : { "access-control-allow-origin": "*" };
}

/**
 * A client request as the polling object gets it: only the Worker may set its
 * headers (a client sending them must not reset or claim a session).
 */
function forwardedRequest(request: Request, values: Partial<Record<keyof typeof WORKER_HEADERS, string>>): Request {
  const forwarded = new Request(request);
  for (const [field, name] of Object.entries(WORKER_HEADERS) as [keyof typeof WORKER_HEADERS, string][]) {
    const value = values[field];
    if (value === undefined) forwarded.headers.delete(name);
    else forwarded.headers.set(name, value);
  }
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

  const address = clientAddress(request);
  const cookie = request.headers.get("cookie");
  if (query.sid !== null) {
    if (!isWellFormedId(query.sid)) return engineErrorResponse(EngineError.UNKNOWN_SID, cors);
    const polling = env.POLLING.getByName(query.sid);
    if (query.transport === "polling") return withHeaders(await polling.fetch(forwardedRequest(request, { address })), cors);
    const upgrade = await polling.beginUpgrade(address);
    if (!upgrade.ok) {
      if (upgrade.error === "taken") return acceptAndClose("session already upgraded");
      if (upgrade.error === "forbidden") return refuseConnection(config, appId, cors);
      return engineErrorResponse(EngineError.UNKNOWN_SID, cors);
    }
    // The session stays in the app it was admitted to, whatever this request's ?appId= says.
    const { token, appId: admittedTo, version } = upgrade;
    return serveWebSocket(env, config, c.executionCtx, { version, sid: query.sid, appId: admittedTo, cookie, upgradeFrom: { polling, token } });
  }

  if (query.transport === "polling" && request.method !== "GET") {
    return engineErrorResponse(EngineError.BAD_HANDSHAKE_METHOD, cors);
  }
  const sid = randomId();
  if (query.transport === "websocket") {
    // An open WebSocket is a live client: it takes its slot now.
    const admitted = await admitConnection(env, config, appId, sid, (promise) => c.executionCtx.waitUntil(promise));
    if (!admitted) return refuseConnection(config, appId, cors);
    return serveWebSocket(env, config, c.executionCtx, { version: query.version, sid, appId, cookie, upgradeFrom: null });
  }
  // A polling client takes its slot with its first request after this one (in the polling
  // object), so handshakes that never poll cannot fill MAX_CLIENTS; a full app still says so here.
  if (config.maxClients > 0 && !(await env.APP.getByName(appId).hasRoom(config.maxClients))) {
    return refuseConnection(config, appId, cors);
  }
  const handshake = forwardedRequest(request, { sid, appId, address });
  return withHeaders(await env.POLLING.getByName(sid).fetch(handshake), cors);
});
