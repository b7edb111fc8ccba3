/**
 * MAX_CLIENTS for a new connection, the same for a WebSocket (admitted by the route
 * when it opens) and a polling client (admitted by its polling object on its first
 * request after the handshake).
 */
import type { Config, Env } from "../config.ts";
import { createLogger } from "../log.ts";
import { EngineError, engineErrorResponse } from "./errors.ts";

/**
 * Takes a slot in `appId` for the connection `sid`. Without a limit nobody can be
 * refused, so it is counted in the background and the client does not wait.
 */
export async function admitConnection(
  env: Env,
  config: Config,
  appId: string,
  sid: string,
  waitUntil: (promise: Promise<unknown>) => void,
): Promise<boolean> {
  const admission = env.APP.getByName(appId).admit(sid, config.maxClients);
  if (config.maxClients > 0) return admission;
  waitUntil(admission.catch(() => {}));
  return true;
}

/** Engine.IO's 403 "Forbidden" for a client the app has no room for, with a log line. */
export function refuseConnection(config: Config, appId: string, headers: HeadersInit = {}): Response {
  createLogger(config.devMode).warn("connection_refused", { appId, reason: "MAX_CLIENTS", maxClients: config.maxClients });
  return engineErrorResponse(EngineError.FORBIDDEN, headers, `too many clients: MAX_CLIENTS (${config.maxClients}) reached`);
}

/**
 * How often a live session renews its lease (each renewal is a Durable Object request):
 * every minute where MAX_CLIENTS is set, so a dead session's slot comes back within
 * minutes; every ten minutes without a limit, where the count only feeds /stats.
 */
export function leaseRenewalInterval(maxClients: number): number {
  return maxClients > 0 ? 60_000 : 600_000;
}
