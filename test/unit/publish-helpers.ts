/**
 * Calling the worker inside workerd with two apps that have secrets (the workerd
 * project's bindings configure one app without), and signing requests the way the
 * bridge and Pusher's SDKs do.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { app } from "../../worker/app.ts";
import { publishPath, signatureHeaders } from "../../worker/publish/signature.ts";

export const APP_A = { appId: "app", key: "secret-key", secret: "app-secret" };
export const APP_B = { appId: "app-b", key: "key-b", secret: "secret-b" };
export const APP_WITHOUT_SECRET = { appId: "keyed-only", key: "key-c" };
export const BRIDGE_SECRET = env.BRIDGE_SECRET!;

const testEnv = { ...env, CLIENTS: JSON.stringify([APP_A, APP_B, APP_WITHOUT_SECRET]) };

/** The worker's router, in this isolate: a request body is read only as far as the worker reads it. */
export async function callWorker(request: Request): Promise<Response> {
  return app.fetch(request, testEnv, createExecutionContext());
}

/** A bridge batch as the bridge sends it: signed for `appId`'s publish endpoint. */
export async function signedBatch(appId: string, batch: { id: string; messages: unknown[] }, now = Date.now()) {
  const body = JSON.stringify(batch);
  const headers = await signatureHeaders(BRIDGE_SECRET, { method: "POST", path: publishPath(appId), body }, now);
  return { body, headers: { "content-type": "application/json", ...headers } };
}

const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** The query string Pusher's SDKs add to a POST: auth params, body_md5 and the signature over them. */
export async function pusherQuery(secret: string, key: string, path: string, body: string, timestamp = Math.floor(Date.now() / 1000)) {
  const encoder = new TextEncoder();
  const params: Record<string, string> = {
    auth_key: key,
    auth_timestamp: String(timestamp),
    auth_version: "1.0",
    body_md5: hex(await crypto.subtle.digest("MD5", encoder.encode(body))),
  };
  const query = Object.keys(params)
    .sort()
    .map((name) => `${name}=${params[name]}`)
    .join("&");
  const hmac = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = hex(await crypto.subtle.sign("HMAC", hmac, encoder.encode(`POST\n${path}\n${query}`)));
  return `${query}&auth_signature=${signature}`;
}
