/**
 * laravel-echo-server's API authentication: the app's key as `?auth_key=` or
 * `Authorization: Bearer <key>`; anything else is 403 `{"error":"Unauthorized"}`.
 */
import { createMiddleware } from "hono/factory";
import { readConfig, type AppClient, type Env } from "../config.ts";

export function appForKey(env: Env, appId: string, request: Request): AppClient | null {
  const url = new URL(request.url);
  const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim();
  const key = url.searchParams.get("auth_key") ?? bearer;
  return readConfig(env).clients.find((client) => client.appId === appId && client.key === key) ?? null;
}

export const requireAppKey = createMiddleware<{ Bindings: Env; Variables: { app: AppClient } }>(async (c, next) => {
  const app = appForKey(c.env, c.req.param("appId") ?? "", c.req.raw);
  if (!app) return c.json({ error: "Unauthorized" }, 403);
  c.set("app", app);
  await next();
});
