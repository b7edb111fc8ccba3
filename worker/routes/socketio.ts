/**
 * `/socket.io/`: Engine.IO handshakes, polling requests and WebSocket upgrades.
 * Polling requests are forwarded to the PollingSessionObject named by their sid,
 * with the client's address, which the session is bound to; every WebSocket (direct,
 * or the upgrade of a polling sid) goes to a ConnectionHostObject named by (app,
 * Engine.IO version, colo, shard), the first shard with room.
 */
import { Hono } from "hono";
import { defaultAppId, isConfiguredApp, readConfig, type Env } from "../config.ts";
import { admitConnection, refuseConnection } from "../engine/admission.ts";
import { EngineError, engineErrorResponse } from "../engine/errors.ts";
import { clientAddress, parseEngineQuery } from "../engine/request.ts";
import { isWellFormedId, randomId } from "../ids.ts";
import type { EngineVersion } from "../protocol/engineio.ts";
import { HOST_FULL_HEADER, HOST_HEADERS, POLLING_HEADERS, hostName } from "../engine/forwarding.ts";

export const socketIoRoutes = new Hono<{ Bindings: Env }>();

/** Socket.IO clients send credentials: echo the Origin rather than `*` when there is one. */
function corsHeaders(request: Request): Record<string, string> {
  const origin = request.headers.get("origin");
  return origin
    ? { "access-control-allow-origin": origin, "access-control-allow-credentials": "true", vary: "Origin" }
    : { "access-control-allow-origin": "*" };
}

/**
 * A client request as the object it goes to gets it: only the Worker may set that
 * object's headers (a client sending them must not reset or claim a session).
 */
function forwardedRequest<Field extends string>(
  request: Request,
  headers: Record<Field, string>,
  values: Partial<Record<Field, string>>,
): Request {
  const forwarded = new Request(request);
  for (const [field, name] of Object.entries(headers) as [Field, string][]) {
    const value = values[field];
    if (value === undefined) forwarded.headers.delete(name);
    else forwarded.headers.set(name, value);
  }
  return forwarded;
}

/** Shards tried before a WebSocket is refused: MAX_HOST_SHARDS * HOST_CAPACITY sockets per app, version and colo. */
const MAX_HOST_SHARDS = 64;

/** Hands a WebSocket to the first connection host of its app, version and colo with room for it. */
async function toConnectionHost(
  env: Env,
  request: Request,
  appId: string,
  version: EngineVersion,
  values: Partial<Record<keyof typeof HOST_HEADERS, string>>,
): Promise<Response | null> {
  const colo = (request.cf as IncomingRequestCfProperties | undefined)?.colo ?? "local";
  for (let shard = 0; shard < MAX_HOST_SHARDS; shard++) {
    const name = hostName(appId, version, colo, shard);
    const response = await env.HOST.getByName(name).fetch(forwardedRequest(request, HOST_HEADERS, { ...values, host: name, appId }));
    if (!response.headers.has(HOST_FULL_HEADER)) return response;
  }
  return null;
}

function everyHostFull(cors: Record<string, string>): Response {
  return new Response("every connection host is full", { status: 503, headers: cors });
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
  if (query.sid !== null) {
    if (!isWellFormedId(query.sid)) return engineErrorResponse(EngineError.UNKNOWN_SID, cors);
    const polling = env.POLLING.getByName(query.sid);
    if (query.transport === "polling") {
      return withHeaders(await polling.fetch(forwardedRequest(request, POLLING_HEADERS, { address })), cors);
    }
    const upgrade = await polling.beginUpgrade(address);
    if (!upgrade.ok) {
      if (upgrade.error === "taken") {
        // Accepted and closed, as engine.io does, by a host (no Worker holds a WebSocket).
        return (await toConnectionHost(env, request, appId, query.version, { closeWith: "session already upgraded" })) ?? everyHostFull(cors);
      }
      if (upgrade.error === "forbidden") return refuseConnection(config, appId, cors);
      return engineErrorResponse(EngineError.UNKNOWN_SID, cors);
    }
    // The session stays in the app it was admitted to, whatever this request's ?appId= says.
    const { token, appId: admittedTo, version } = upgrade;
    const hosted = await toConnectionHost(env, request, admittedTo, version, { sid: query.sid, upgradeFrom: query.sid, upgradeToken: token });
    // The polling object abandons the upgrade after UPGRADE_TIMEOUT and the client carries on polling.
    return hosted ?? everyHostFull(cors);
  }

  if (query.transport === "polling" && request.method !== "GET") {
    return engineErrorResponse(EngineError.BAD_HANDSHAKE_METHOD, cors);
  }
  const sid = randomId();
  if (query.transport === "websocket") {
    // An open WebSocket is a live client: it takes its slot now.
    const admitted = await admitConnection(env, config, appId, sid, (promise) => c.executionCtx.waitUntil(promise));
    if (!admitted) return refuseConnection(config, appId, cors);
    const hosted = await toConnectionHost(env, request, appId, query.version, { sid });
    if (hosted) return hosted;
    c.executionCtx.waitUntil(env.APP.getByName(appId).release(sid).catch(() => {}));
    return everyHostFull(cors);
  }
  // A polling client takes its slot with its first request after this one (in the polling
  // object), so handshakes that never poll cannot fill MAX_CLIENTS; a full app still says so here.
  if (config.maxClients > 0 && !(await env.APP.getByName(appId).hasRoom(config.maxClients))) {
    return refuseConnection(config, appId, cors);
  }
  const handshake = forwardedRequest(request, POLLING_HEADERS, { sid, appId, address });
  return withHeaders(await env.POLLING.getByName(sid).fetch(handshake), cors);
});
