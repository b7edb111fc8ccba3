/**
 * What the Worker tells the Durable Objects it forwards client requests to: the
 * headers only it sets (client copies are stripped, so a client cannot claim a
 * session or reset one), and how connection hosts are named.
 */
import type { EngineVersion } from "../protocol/engineio.ts";

/** On requests forwarded to a PollingSessionObject. */
export const POLLING_HEADERS = { sid: "x-echo-sid", appId: "x-echo-app", address: "x-echo-address" } as const;

/** On WebSocket requests forwarded to a ConnectionHostObject. */
export const HOST_HEADERS = {
  /** This host's name (it keeps it: channels address it by name). */
  host: "x-echo-host",
  sid: "x-echo-sid",
  appId: "x-echo-app",
  /** An upgrade: the polling session's sid and the token `beginUpgrade` gave. */
  upgradeFrom: "x-echo-upgrade-from",
  upgradeToken: "x-echo-upgrade-token",
  /** Accept the WebSocket and close it at once with this reason (a second WebSocket on an upgraded sid). */
  closeWith: "x-echo-close",
} as const;

/** Set on a full host's refusal: the Worker tries the next shard. */
export const HOST_FULL_HEADER = "x-echo-host-full";

/** The host a WebSocket of `appId` and Engine.IO `version` arriving at `colo` goes to, in shard `shard`. */
export function hostName(appId: string, version: EngineVersion, colo: string, shard: number): string {
  return `${colo}/eio${version}/${shard}/${appId}`;
}
