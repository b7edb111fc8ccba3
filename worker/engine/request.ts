/** Reading an Engine.IO request: protocol version, transport, sid, JSONP index, and who sent it. */
import type { EngineVersion } from "../protocol/engineio.ts";
import { EngineError, type EngineErrorKind } from "./errors.ts";

export type TransportName = "polling" | "websocket";

export interface EngineQuery {
  version: EngineVersion;
  transport: TransportName;
  sid: string | null;
  /** EIO 3 JSONP polling (`j=<n>`), used by very old browsers. */
  jsonp: string | null;
  /** `?appId=` picks the app on multi-app deployments; otherwise the first configured app. */
  appId: string | null;
}

/**
 * The client's address, which a polling session and its upgrade are bound to: a sid
 * others have seen (socket.io-client 2 shares it as the socket id) is no key to the
 * session from elsewhere. Cloudflare sets CF-Connecting-IP and overwrites any sent by
 * the client; locally (miniflare, wrangler dev) it is the peer address unless the
 * client sent one itself.
 */
export function clientAddress(request: Request): string {
  return request.headers.get("cf-connecting-ip") ?? "";
}

export function parseEngineQuery(url: URL): EngineQuery | EngineErrorKind {
  const params = url.searchParams;
  const transport = params.get("transport");
  if (transport !== "polling" && transport !== "websocket") return EngineError.UNKNOWN_TRANSPORT;
  // engine.io 3 never looked at EIO, so a request without it (the documented curl
  // health check) is a protocol 3 client.
  const eio = params.get("EIO");
  let version: EngineVersion;
  if (eio === null || eio === "3") version = 3;
  else if (eio === "4") version = 4;
  else return EngineError.UNSUPPORTED_PROTOCOL_VERSION;
  const jsonp = params.get("j");
  if (jsonp !== null && (version !== 3 || !/^\d+$/.test(jsonp))) return EngineError.BAD_REQUEST;
  return { version, transport, sid: params.get("sid"), jsonp, appId: params.get("appId") };
}
