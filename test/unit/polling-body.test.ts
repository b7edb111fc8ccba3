/**
 * Issue 9 item 1, polling part, inside workerd (the runtime in front of the isolate
 * may take in a whole upload itself, so the cap is checked in the isolate): a polling
 * POST over MAX_PAYLOAD is answered 413 after at most the cap (plus one chunk) was read,
 * streamed or declared, and ends that session.
 */
import { createExecutionContext, env } from "cloudflare:test";
import { expect, it } from "vitest";
import { app } from "../../worker/app.ts";
import { readConfig } from "../../worker/config.ts";
import { countingBody } from "./counting-body.ts";

const CHUNK = 64 * 1024;
const { maxPayload } = readConfig(env);

const callWorker = (request: Request) => app.fetch(request, env, createExecutionContext());
const engineUrl = (query: string) => `https://worker.test/socket.io/?EIO=4&transport=polling${query}`;

async function openSession(): Promise<string> {
  const open = await (await callWorker(new Request(engineUrl("")))).text();
  return JSON.parse(open.slice(1)).sid;
}

/** A polling payload of messages, made one CHUNK at a time as the reader pulls, counting what was pulled. */
const endlessPayload = () => countingBody(new TextEncoder().encode("4" + "x".repeat(CHUNK - 2) + "\x1e"), maxPayload * 3);

it.each<{ body: string; headers: Record<string, string> }>([
  { body: "streamed", headers: {} },
  { body: "declared", headers: { "content-length": String(maxPayload * 3) } },
])("a $body polling body over MAX_PAYLOAD gets 413 with at most the cap read, and the session ends", async ({ headers }) => {
  const sid = await openSession();
  const payload = endlessPayload();
  const response = await callWorker(new Request(engineUrl(`&sid=${sid}`), { method: "POST", body: payload.stream, headers }));
  expect(response.status).toBe(413);
  expect(payload.pulled()).toBeLessThanOrEqual(maxPayload + CHUNK);
  const after = await callWorker(new Request(engineUrl(`&sid=${sid}`)));
  expect(after.status).toBe(400);
  expect(await after.json()).toMatchObject({ code: 1, message: "Session ID unknown" });
});
