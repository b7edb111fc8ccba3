/**
 * CORS for the HTTP API and `/stats`, laravel-echo-server's `apiOriginAllow`:
 * ALLOW_ORIGIN (a comma list, `*` for any), ALLOW_METHODS and ALLOW_HEADERS. The
 * headers go on every answer (403 and 404 too, so a browser can read the error),
 * and a preflight is answered without an app key. No ALLOW_ORIGIN, no CORS.
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { readConfig, type Config, type Env } from "../config.ts";

const middlewareFor = new WeakMap<Config, MiddlewareHandler>();

function corsFor(config: Config): MiddlewareHandler {
  let middleware = middlewareFor.get(config);
  if (middleware) return middleware;
  const allowed = config.cors.allowOrigin;
  middleware =
    allowed.length === 0
      ? async (_c, next) => next()
      : cors({
          // Several origins cannot share one header: echo the caller's when it is listed.
          origin: allowed.includes("*") ? "*" : (origin) => (allowed.includes(origin) ? origin : null),
          allowMethods: config.cors.allowMethods,
          allowHeaders: config.cors.allowHeaders,
        });
  middlewareFor.set(config, middleware);
  return middleware;
}

export const apiCors: MiddlewareHandler<{ Bindings: Env }> = (c, next) => corsFor(readConfig(c.env))(c, next);
