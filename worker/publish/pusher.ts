/**
 * Pusher's REST API authentication, as pusher-php-server (Laravel's `pusher`
 * broadcaster) and the npm `pusher` SDK sign a request: the query carries
 * `auth_key`, `auth_timestamp` (seconds), `auth_version=1.0`, `body_md5` and
 * `auth_signature`, the hex HMAC-SHA256 with the app secret of
 * `"<METHOD>\n<path>\n<the other query parameters, sorted by key, as k=v joined by &>"`.
 *
 * The signature covers the query and so `body_md5`, which lets everything but the
 * body's hash be checked before the body is read.
 */
import { fromHex, hmacMatches, md5Hex } from "../crypto.ts";

/** How far `auth_timestamp` may be from the worker's clock, in seconds (Pusher's own window). */
export const PUSHER_TIMESTAMP_WINDOW_S = 600;

/** A Pusher-signed request carries `auth_signature`; laravel-echo-server's form only `auth_key`. */
export const isPusherSigned = (url: URL) => url.searchParams.has("auth_signature");

export type PusherQueryCheck = { ok: true; bodyMd5: string } | { ok: false; reason: string };

/** Checks the query of a Pusher-signed request (version, timestamp window, signature) against the app secret. */
export async function checkPusherQuery(secret: string, method: string, url: URL, now = Date.now()): Promise<PusherQueryCheck> {
  const params = [...url.searchParams];
  const keys = new Set(params.map(([key]) => key));
  if (keys.size !== params.length) return { ok: false, reason: "a query parameter is given twice" };
  const query = url.searchParams;
  if (query.get("auth_version") !== "1.0") return { ok: false, reason: "auth_version must be 1.0" };
  const timestamp = query.get("auth_timestamp") ?? "";
  if (!/^\d{1,15}$/.test(timestamp)) return { ok: false, reason: "auth_timestamp must be a Unix time in seconds" };
  if (Math.abs(now / 1000 - Number(timestamp)) > PUSHER_TIMESTAMP_WINDOW_S) {
    return { ok: false, reason: `auth_timestamp is more than ${PUSHER_TIMESTAMP_WINDOW_S} s from the server's time; check the publisher's clock` };
  }
  const bodyMd5 = query.get("body_md5") ?? "";
  if (!/^[0-9a-f]{32}$/i.test(bodyMd5)) return { ok: false, reason: "body_md5 must be the hex MD5 of the body" };
  const mac = fromHex(query.get("auth_signature") ?? "");
  if (!mac || mac.length !== 32) return { ok: false, reason: "auth_signature must be a hex HMAC-SHA256" };
  const signedQuery = params
    .filter(([key]) => key !== "auth_signature")
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join("&");
  const stringToSign = `${method.toUpperCase()}\n${url.pathname}\n${signedQuery}`;
  if (!(await hmacMatches(secret, mac, stringToSign))) {
    // As Pusher does: name what was expected to be signed (nothing secret), which shows path or key mix-ups.
    return { ok: false, reason: `invalid signature: expected the HMAC-SHA256 of ${JSON.stringify(stringToSign)} with the app secret` };
  }
  return { ok: true, bodyMd5: bodyMd5.toLowerCase() };
}

/** Whether the body is the one the signed query's `body_md5` names. */
export async function bodyMatches(body: Uint8Array, bodyMd5: string): Promise<boolean> {
  return (await md5Hex(body)) === bodyMd5;
}
