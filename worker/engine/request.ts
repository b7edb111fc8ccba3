/** Reading an Engine.IO request's query: protocol version, transport, sid, JSONP index. */
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
