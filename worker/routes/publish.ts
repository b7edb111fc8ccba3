/**
 * Publishing: the bridge's signed batch endpoint and laravel-echo-server's
 * `POST /apps/:appId/events`.
 */
import { Hono } from "hono";
import { isConfiguredApp, readConfig, type AppClient, type Env } from "../config.ts";
import { createLogger } from "../log.ts";
import { fanOut, invalidMessage, type PublishMessage } from "../publish/fanout.ts";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verify } from "../publish/signature.ts";
import { requireAppKey } from "./app-key.ts";

export const publishRoutes = new Hono<{ Bindings: Env; Variables: { app: AppClient } }>();

/** Largest bridge batch accepted; the bridge splits on 413. */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

publishRoutes.post("/apps/:appId/publish", async (c) => {
  const config = readConfig(c.env);
  const log = createLogger(config.devMode);
  const appId = c.req.param("appId");
  if (!isConfiguredApp(config, appId)) return c.json({ error: `Unknown app ${appId}` }, 404);
  if (!config.bridgeSecret) return c.json({ error: "BRIDGE_SECRET is not set on the worker" }, 401);
  const body = await c.req.text();
  if (body.length > MAX_BATCH_BYTES) return c.json({ error: "Batch too large" }, 413);
  const check = await verify(config.bridgeSecret, c.req.header(TIMESTAMP_HEADER), c.req.header(SIGNATURE_HEADER), body);
  if (!check.ok) {
    log.warn("publish_unauthorized", { appId, reason: check.reason });
    return c.json({ error: `Unauthorized: ${check.reason}` }, 401);
  }
  let batch: { id?: unknown; messages?: unknown };
  try {
    batch = JSON.parse(body);
  } catch {
    return c.json({ error: "Body is not valid JSON" }, 400);
  }
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
  const batchId = typeof batch.id === "string" && batch.id !== "" ? batch.id : undefined;
  try {
    const { delivered } = await fanOut(c.env, appId, valid, batchId);
    log.debug("published", { appId, batchId, messages: valid.length, delivered });
  } catch (error) {
    // Retryable: channels that already have this batch id skip it on the retry.
    log.warn("publish_failed", { appId, batchId, error: String(error) });
    return c.json({ error: "Publish failed, retry" }, 503);
  }
  return c.json({ accepted: valid.length, rejected });
});

publishRoutes.post("/apps/:appId/events", requireAppKey, async (c) => {
  const config = readConfig(c.env);
  const invalid = () => c.json({ error: "Event must include channel, event name and data" }, 400);
  let event: { channel?: unknown; channels?: unknown; name?: unknown; data?: unknown; socket_id?: unknown };
  try {
    event = await c.req.json();
  } catch {
    return c.json({ error: "Body is not valid JSON" }, 400);
  }
  if (!event || typeof event !== "object") return invalid();
  const channels = Array.isArray(event.channels) ? event.channels : event.channel !== undefined ? [event.channel] : [];
  const messages = channels.map((channel) => ({
    channel,
    event: event.name,
    data: event.data,
    socket: typeof event.socket_id === "string" ? event.socket_id : null,
  }));
  if (messages.length === 0 || event.data === undefined || messages.some((m) => invalidMessage(m) !== null)) {
    return invalid();
  }
  await fanOut(c.env, c.get("app").appId, messages as PublishMessage[]);
  createLogger(config.devMode).debug("published", { appId: c.get("app").appId, channels, name: event.name });
  return c.json({ message: "ok" });
});
