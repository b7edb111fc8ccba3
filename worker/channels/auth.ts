/**
 * Private and presence channel authorization against the Laravel app's
 * `/broadcasting/auth`, called from the Worker at the edge the way
 * laravel-echo-server calls it (the client's credentials from `auth.headers`, its
 * cookie, `X-Requested-With`, no redirects followed), plus what Laravel's `pusher`
 * broadcaster needs: `socket_id` next to `channel_name` in the form, as pusher-js
 * sends it. Both broadcasters' answers are accepted: `true` or `{"auth":…}` for
 * private channels, `channel_data` as an object or a JSON string for presence.
 */
import type { Config } from "../config.ts";
import { channelKind } from "./names.ts";

export interface PresenceMember {
  user_id: string | number;
  user_info: unknown;
}

export type AuthResult =
  | { ok: true; member: PresenceMember | null }
  /** `status` is Laravel's HTTP status, or 0 when Laravel could not be reached in time. */
  | { ok: false; status: number; reason: string };

/**
 * The only headers of the client's `auth.headers` that reach Laravel: the
 * credentials its auth route reads (session cookie, bearer token) and CSRF tokens.
 * An allowlist, so nothing a client sends can pose as a proxy's or Cloudflare's
 * header (X-Forwarded-*, X-Real-IP, CF-*) or upset the request itself (hop-by-hop
 * headers, Host, Content-Length). X-Requested-With and X-Socket-Id are ours to set.
 */
const FORWARDED_CLIENT_HEADERS = new Set(["authorization", "cookie", "x-csrf-token", "x-xsrf-token"]);

export interface AuthRequest {
  channel: string;
  /** The subscribing socket's id: `socket_id` in the form and `X-Socket-Id`, whatever the client claims. */
  socketId: string;
  /** `auth.headers` from the client's subscribe payload. */
  headers: unknown;
  /** Cookie header of the client's handshake request. */
  handshakeCookie: string | null;
  /** Aborts the call (the client unsubscribed or went away). */
  signal: AbortSignal;
}

function buildAuthRequest(config: Config, request: AuthRequest): Request {
  const headers = new Headers();
  if (request.headers && typeof request.headers === "object") {
    for (const [name, value] of Object.entries(request.headers as Record<string, unknown>)) {
      if (typeof value !== "string" || !FORWARDED_CLIENT_HEADERS.has(name.toLowerCase())) continue;
      try {
        headers.set(name, value);
      } catch {
        // An invalid header value from the client is skipped, not fatal.
      }
    }
  }
  if (!headers.has("cookie") && request.handshakeCookie) headers.set("cookie", request.handshakeCookie);
  headers.set("x-requested-with", "XMLHttpRequest");
  headers.set("x-socket-id", request.socketId);
  headers.set("content-type", "application/x-www-form-urlencoded");
  headers.set("accept", "application/json");
  return new Request(`${config.authHost}${config.authEndpoint}`, {
    method: "POST",
    headers,
    body: new URLSearchParams({ channel_name: request.channel, socket_id: request.socketId }).toString(),
    redirect: "manual",
  });
}

export async function authorizeChannel(config: Config, request: AuthRequest): Promise<AuthResult> {
  if (!config.authHost) return { ok: false, status: 0, reason: "AUTH_HOST is not configured" };
  const timeout = AbortSignal.timeout(config.authTimeout);
  let response: Response;
  try {
    response = await fetch(buildAuthRequest(config, request), { signal: AbortSignal.any([request.signal, timeout]) });
  } catch (error) {
    if (request.signal.aborted) return { ok: false, status: 0, reason: "cancelled: the client no longer wants the channel" };
    return { ok: false, status: 0, reason: timeout.aborted ? `no answer within ${config.authTimeout} ms` : String(error) };
  }
  if (response.status !== 200) {
    const snippet = (await response.text().catch(() => "")).slice(0, 200);
    return { ok: false, status: response.status, reason: snippet || response.statusText };
  }
  if (channelKind(request.channel) !== "presence") {
    await response.body?.cancel();
    return { ok: true, member: null };
  }
  return { ok: true, member: presenceMember(await response.text()) };
}

/** Laravel's redis broadcaster returns channel_data as an object, its pusher broadcaster as a JSON string. */
export function presenceMember(body: string): PresenceMember | null {
  try {
    let channelData: unknown = (JSON.parse(body) as { channel_data?: unknown })?.channel_data;
    if (typeof channelData === "string") channelData = JSON.parse(channelData);
    if (!channelData || typeof channelData !== "object") return null;
    const { user_id, user_info } = channelData as { user_id?: unknown; user_info?: unknown };
    if (typeof user_id !== "string" && typeof user_id !== "number") return null;
    return { user_id, user_info: user_info ?? null };
  } catch {
    return null;
  }
}
