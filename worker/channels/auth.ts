/**
 * Private and presence channel authorization against the Laravel app's
 * `/broadcasting/auth`, called from the Worker at the edge the way
 * laravel-echo-server calls it: form body `channel_name`, the client's
 * `auth.headers`, its cookie, `X-Requested-With`, no redirects followed.
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

// Headers a client must not dictate on our request to Laravel.
const NOT_FORWARDED = new Set(["host", "content-length", "content-type", "connection", "transfer-encoding", "upgrade"]);

export interface AuthRequest {
  channel: string;
  /** `auth.headers` from the client's subscribe payload. */
  headers: unknown;
  /** Cookie header of the client's handshake request. */
  handshakeCookie: string | null;
}

function buildAuthRequest(config: Config, request: AuthRequest): Request {
  const headers = new Headers();
  if (request.headers && typeof request.headers === "object") {
    for (const [name, value] of Object.entries(request.headers as Record<string, unknown>)) {
      if (typeof value !== "string" || NOT_FORWARDED.has(name.toLowerCase())) continue;
      try {
        headers.set(name, value);
      } catch {
        // An invalid header name or value from the client is skipped, not fatal.
      }
    }
  }
  if (!headers.has("cookie") && request.handshakeCookie) headers.set("cookie", request.handshakeCookie);
  headers.set("x-requested-with", "XMLHttpRequest");
  headers.set("content-type", "application/x-www-form-urlencoded");
  headers.set("accept", "application/json");
  return new Request(`${config.authHost}${config.authEndpoint}`, {
    method: "POST",
    headers,
    body: new URLSearchParams({ channel_name: request.channel }).toString(),
    redirect: "manual",
  });
}

export async function authorizeChannel(config: Config, request: AuthRequest): Promise<AuthResult> {
  if (!config.authHost) return { ok: false, status: 0, reason: "AUTH_HOST is not configured" };
  let response: Response;
  try {
    response = await fetch(buildAuthRequest(config, request), { signal: AbortSignal.timeout(config.authTimeout) });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return { ok: false, status: 0, reason: timedOut ? `no answer within ${config.authTimeout} ms` : String(error) };
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

/** Laravel's redis broadcaster returns channel_data as an object; Pusher-style apps as a JSON string. */
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
