/**
 * laravel-echo-server's API authentication: the app's key as `?auth_key=` or
 * `Authorization: Bearer <key>`; anything else is 403 `{"error":"Unauthorized"}`.
 * Keys are compared in constant time, against every candidate, so neither the time
 * nor the order of the answer tells a caller how close a guess was.
 */
import { createMiddleware } from "hono/factory";
import type { AppClient } from "../clients.ts";
import { readConfig, type Env } from "../config.ts";
import { sameSecret } from "../crypto.ts";

function keyOf(request: Request): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim();
  return new URL(request.url).searchParams.get("auth_key") ?? bearer;
}

/** The configured client whose key is `key`, among those of `appId` when given. */
export async function clientWithKey(env: Env, key: string | undefined, appId?: string): Promise<AppClient | null> {
  if (key === undefined) return null;
  const candidates = readConfig(env).clients.filter((client) => appId === undefined || client.appId === appId);
  const matches = await Promise.all(candidates.map((client) => sameSecret(key, client.key)));
  return candidates[matches.indexOf(true)] ?? null;
}

/** The app whose key the request carries, whichever app that is. */
export function appWithKey(env: Env, request: Request): Promise<AppClient | null> {
  return clientWithKey(env, keyOf(request));
}

export const requireAppKey = createMiddleware<{ Bindings: Env; Variables: { app: AppClient } }>(async (c, next) => {
  const app = await clientWithKey(c.env, keyOf(c.req.raw), c.req.param("appId") ?? "");
  if (!app) return c.json({ error: "Unauthorized" }, 403);
  c.set("app", app);
  await next();
});
