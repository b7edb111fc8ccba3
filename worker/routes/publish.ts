/**
 * Publishing, three ways in, one path to the channels:
 * - `POST /apps/:appId/publish`: the bridge's signed batches (worker/publish/signature.ts);
 * - `POST /apps/:appId/events` and `/batch_events`: Pusher's REST API, signed with the
 *   app secret as Laravel's `pusher` broadcaster does, or laravel-echo-server's form
 *   with only the app key (`auth_signature` in the query tells them apart).
 *
 * Every check that needs no body (key, signature headers or query, declared length)
 * comes before the body is read; the body is read up to a cap and no further, and its
 * signature or MD5 is checked before it is parsed.
 */
import { Hono, type Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppClient } from "../clients.ts";
import { isConfiguredApp, readConfig, type Env } from "../config.ts";
import type { BatchStamp } from "../../durable-objects/channel.ts";
import { readBodyWithin } from "../http/body.ts";
import { createLogger, type Logger } from "../log.ts";
import { eventsBodyLimit, readBatch, readEvent, type EventsRequest } from "../publish/events.ts";
import { fanOut } from "../publish/fanout.ts";
import { invalidMessage, type PublishMessage } from "../publish/message.ts";
import { bodyMatches, checkPusherQuery, isPusherSigned } from "../publish/pusher.ts";
import {
  publishPath,
  readSignature,
  REPLAY_WINDOW_MS,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifySignature,
} from "../publish/signature.ts";
import { clientWithKey, requireAppKey } from "./app-key.ts";

type PublishEnv = { Bindings: Env; Variables: { app: AppClient; pusherBodyMd5?: string } };

export const publishRoutes = new Hono<PublishEnv>();

/** Largest bridge batch accepted; the bridge splits on 413. */
export const MAX_BATCH_BYTES = 8 * 1024 * 1024;

const decoder = new TextDecoder();

function parseJson(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(decoder.decode(bytes)) };
  } catch {
    return { ok: false };
  }
}

const tooLarge = (c: Context, limit: number) => c.json({ error: `Body too large: at most ${limit} bytes` }, 413);

/** 401 with the reason, which is also logged: a publisher refused here has nobody else to tell the operator. */
function unauthorized(c: Context<PublishEnv>, reason: string) {
  createLogger(readConfig(c.env).devMode).warn("publish_unauthorized", { appId: c.req.param("appId"), reason });
  return c.json({ error: `Unauthorized: ${reason}` }, 401);
}

/** Hands messages to the channels; false (logged) when a channel object failed, which the publisher may retry. */
async function deliver(env: Env, log: Logger, appId: string, messages: PublishMessage[], batch?: BatchStamp): Promise<boolean> {
  try {
    const { delivered } = await fanOut(env, appId, messages, batch);
    log.debug("published", { appId, batchId: batch?.id, messages: messages.length, delivered });
    return true;
  } catch (error) {
    log.warn("publish_failed", { appId, batchId: batch?.id, error: String(error) });
    return false;
  }
}

publishRoutes.post("/apps/:appId/publish", async (c) => {
  const config = readConfig(c.env);
  const log = createLogger(config.devMode);
  const appId = c.req.param("appId");
  if (!isConfiguredApp(config, appId)) return c.json({ error: `Unknown app ${appId}` }, 404);
  if (!config.bridgeSecret) return c.json({ error: "BRIDGE_SECRET is not set on the worker" }, 401);
  const signature = readSignature(c.req.header(TIMESTAMP_HEADER), c.req.header(SIGNATURE_HEADER));
  if (!signature.ok) return unauthorized(c, signature.reason);
  const body = await readBodyWithin(c.req.raw, MAX_BATCH_BYTES);
  if (!body) return tooLarge(c, MAX_BATCH_BYTES);
  const signed = { method: c.req.method, path: publishPath(appId), body };
  if (!(await verifySignature(config.bridgeSecret, signature, signed))) return unauthorized(c, "bad signature");
  const json = parseJson(body);
  if (!json.ok) return c.json({ error: "Body is not valid JSON" }, 400);
  const batch = json.value as { id?: unknown; messages?: unknown } | null;
  if (!batch || !Array.isArray(batch.messages)) return c.json({ error: "Body must be {id, messages: [...]}" }, 400);
  const valid: PublishMessage[] = [];
  let rejected = 0;
  for (const message of batch.messages) {
    const problem = invalidMessage(message);
    if (problem === null) valid.push(message as PublishMessage);
    else {
      rejected++;
      log.warn("publish_message_rejected", { appId, problem });
    }
  }
  // Remembered until a replay of this signed request would be refused for its timestamp.
  const stamp =
    typeof batch.id === "string" && batch.id !== ""
      ? { id: batch.id, rememberUntil: Math.max(Date.now(), signature.timestamp) + REPLAY_WINDOW_MS }
      : undefined;
  // Retryable: channels that already have this batch id skip it on the retry.
  if (!(await deliver(c.env, log, appId, valid, stamp))) return c.json({ error: "Publish failed, retry" }, 503);
  return c.json({ accepted: valid.length, rejected });
});

/** A Pusher-signed request is checked against the app secret; anything else needs the app key. */
const authorizeEvents = createMiddleware<PublishEnv>(async (c, next) => {
  const url = new URL(c.req.url);
  if (!isPusherSigned(url)) return requireAppKey(c, next);
  const appId = c.req.param("appId") ?? "";
  const app = await clientWithKey(c.env, url.searchParams.get("auth_key") ?? undefined, appId);
  if (!app) return unauthorized(c, `auth_key is not a key of app ${appId}`);
  if (!app.secret) {
    return unauthorized(c, `app ${appId} has no secret, so it cannot verify Pusher-signed requests: add "secret" to its CLIENTS entry`);
  }
  const query = await checkPusherQuery(app.secret, c.req.method, url);
  if (!query.ok) return unauthorized(c, query.reason);
  c.set("app", app);
  c.set("pusherBodyMd5", query.bodyMd5);
  await next();
});

function eventsRoute(read: (body: unknown, maxDataBytes: number) => EventsRequest) {
  return async (c: Context<PublishEnv>) => {
    const config = readConfig(c.env);
    const log = createLogger(config.devMode);
    const limit = eventsBodyLimit(config.maxEventDataBytes);
    const body = await readBodyWithin(c.req.raw, limit);
    if (!body) return tooLarge(c, limit);
    const bodyMd5 = c.get("pusherBodyMd5");
    if (bodyMd5 !== undefined && !(await bodyMatches(body, bodyMd5))) {
      return unauthorized(c, "body_md5 is not the MD5 of the body");
    }
    const json = parseJson(body);
    if (!json.ok) return c.json({ error: "Body is not valid JSON" }, 400);
    const request = read(json.value, config.maxEventDataBytes);
    if (!request.ok) return c.json({ error: request.error }, request.status);
    if (!(await deliver(c.env, log, c.get("app").appId, request.messages))) return c.json({ error: "Publish failed, retry" }, 503);
    // Pusher answers `{}`; laravel-echo-server `{"message":"ok"}`.
    return bodyMd5 !== undefined ? c.json({}) : c.json({ message: "ok" });
  };
}

publishRoutes.post("/apps/:appId/events", authorizeEvents, eventsRoute(readEvent));
publishRoutes.post("/apps/:appId/batch_events", authorizeEvents, eventsRoute(readBatch));
