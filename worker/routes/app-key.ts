/**
 * laravel-echo-server's API authentication: the app's key as `?auth_key=` or
 * `Authorization: Bearer <key>`; anything else is 403 `{"error":"Unauthorized"}`.
 */
import { createMiddleware } from "hono/factory";
import { readConfig, type AppClient, type Env } from "../config.ts";

function keyOf(request: Request): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim();
  return new URL(request.url).searchParams.get("auth_key") ?? bearer;
}

function appForKey(env: Env, appId: string, request: Request): AppClient | null {
  const key = keyOf(request);
  return readConfig(env).clients.find((client) => client.appId === appId && client.key === key) ?? null;
}

/** The app whose key the request carries, whichever app that is. */
export function appWithKey(env: Env, request: Request): AppClient | null {
  const key = keyOf(request);
  return readConfig(env).clients.find((client) => client.key === key) ?? null;
}

export const requireAppKey = createMiddleware<{ Bindings: Env; Variables: { app: AppClient } }>(async (c, next) => {
  const app = appForKey(c.env, c.req.param("appId") ?? "", c.req.raw);
  if (!app) return c.json({ error: "Unauthorized" }, 403);
  c.set("app", app);
  await next();
});
