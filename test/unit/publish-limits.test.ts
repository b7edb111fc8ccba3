/**
 * Issue 9 item 1, inside workerd: publish bodies are refused before they are read.
 * Each request body here is a stream that produces a chunk only when the worker
 * pulls one, and counts them: a request without credentials is refused having read
 * nothing, and an oversized one (streamed or declared) after at most the cap plus
 * one chunk. Also Pusher's limits and error answers for events and batches.
 */
import { describe, expect, it } from "vitest";
import { MAX_BATCH_BYTES } from "../../worker/routes/publish.ts";
import { eventsBodyLimit } from "../../worker/publish/events.ts";
import { TIMESTAMP_HEADER, SIGNATURE_HEADER } from "../../worker/publish/signature.ts";
import { countingBody } from "./counting-body.ts";
import { APP_A, APP_B, APP_WITHOUT_SECRET, callWorker, pusherQuery, signedBatch } from "./publish-helpers.ts";

const CHUNK = 64 * 1024;
/** Pusher's default limit on one event's data (MAX_EVENT_DATA_BYTES is not set here). */
const EVENTS_LIMIT = eventsBodyLimit(10_240);

/** A body of `totalBytes` (whitespace) made on demand, one CHUNK per pull. */
const whitespaceBody = (totalBytes: number) => countingBody(new Uint8Array(CHUNK).fill(0x20), totalBytes);

function post(pathAndQuery: string, body: ReadableStream | string, headers: Record<string, string> = {}) {
  return callWorker(new Request(`https://worker.test${pathAndQuery}`, { method: "POST", body, headers }));
}

interface Endpoint {
  name: string;
  cap: number;
  /** The request line and headers of a caller without valid credentials, and the status it gets. */
  unauthorized: { path: string; headers: Record<string, string>; status: number };
  /** Credentials that pass every check made before the body is read. */
  authorized: () => Promise<{ path: string; headers: Record<string, string> }>;
}

const keyed = (path: string): Endpoint => ({
  name: `POST ${path} with an app key`,
  cap: EVENTS_LIMIT,
  unauthorized: { path, headers: { authorization: "Bearer wrong-key" }, status: 403 },
  authorized: async () => ({ path, headers: { authorization: `Bearer ${APP_A.key}` } }),
});

const pusherSigned = (path: string): Endpoint => ({
  name: `POST ${path} signed as Pusher does`,
  cap: EVENTS_LIMIT,
  unauthorized: { path: `${path}?${forgedPusherQuery()}`, headers: {}, status: 401 },
  // The signature covers body_md5, not the body: it checks out before the body is read.
  authorized: async () => ({ path: `${path}?${await pusherQuery(APP_A.secret, APP_A.key, path, "{}")}`, headers: {} }),
});

/** A fresh, well-formed Pusher query whose signature is wrong. */
function forgedPusherQuery(): string {
  const now = Math.floor(Date.now() / 1000);
  return `auth_key=${APP_A.key}&auth_timestamp=${now}&auth_version=1.0&body_md5=${"0".repeat(32)}&auth_signature=${"0".repeat(64)}`;
}

const ENDPOINTS: Endpoint[] = [
  {
    name: "POST /apps/:appId/publish (the bridge)",
    cap: MAX_BATCH_BYTES,
    unauthorized: { path: "/apps/app/publish", headers: {}, status: 401 },
    authorized: async () => ({
      path: "/apps/app/publish",
      // Fresh and well formed, so only the body can prove it wrong.
      headers: { [TIMESTAMP_HEADER]: String(Date.now()), [SIGNATURE_HEADER]: "v2=" + "00".repeat(32) },
    }),
  },
  keyed("/apps/app/events"),
  keyed("/apps/app/batch_events"),
  pusherSigned("/apps/app/events"),
  pusherSigned("/apps/app/batch_events"),
];

describe.each(ENDPOINTS)("$name", (endpoint) => {
  it("refuses a caller without valid credentials having read none of the body", async () => {
    const body = whitespaceBody(endpoint.cap * 2);
    const response = await post(endpoint.unauthorized.path, body.stream, endpoint.unauthorized.headers);
    expect(response.status).toBe(endpoint.unauthorized.status);
    expect(body.pulled()).toBe(0);
  });

  it("answers 413 to a streamed body over the cap after reading at most the cap plus one chunk", async () => {
    const body = whitespaceBody(endpoint.cap * 3);
    const { path, headers } = await endpoint.authorized();
    const response = await post(path, body.stream, headers);
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: `Body too large: at most ${endpoint.cap} bytes` });
    expect(body.pulled()).toBeGreaterThan(0);
    expect(body.pulled()).toBeLessThanOrEqual(endpoint.cap + CHUNK);
  });

  it("answers 413 to a declared Content-Length over the cap having read none of the body", async () => {
    const body = whitespaceBody(endpoint.cap * 3);
    const { path, headers } = await endpoint.authorized();
    const response = await post(path, body.stream, { ...headers, "content-length": String(endpoint.cap * 3) });
    expect(response.status).toBe(413);
    expect(body.pulled()).toBe(0);
  });
});

describe("signatures are checked before the body is parsed", () => {
  it("a bridge batch with a wrong signature is 401 even when its body is not JSON", async () => {
    const { headers } = await ENDPOINTS[0]!.authorized();
    const response = await post("/apps/app/publish", "{not json", headers);
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "Unauthorized: bad signature" });
  });

  it("a Pusher request whose body is not the one body_md5 names is 401 even when it is not JSON", async () => {
    const query = await pusherQuery(APP_A.secret, APP_A.key, "/apps/app/events", '{"name":"E","channel":"c","data":"{}"}');
    const response = await post(`/apps/app/events?${query}`, "{not json");
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({ error: "Unauthorized: body_md5 is not the MD5 of the body" });
  });
});

/** Posts `body` to `path` signed as Pusher's SDKs sign it. */
async function pusherPost(path: string, body: unknown, app: { key: string; secret: string } = APP_A, timestamp?: number) {
  const text = JSON.stringify(body);
  const query = await pusherQuery(app.secret, app.key, path, text, timestamp);
  const response = await post(`${path}?${query}`, text, { "content-type": "application/json" });
  return { status: response.status, body: (await response.json()) as { error?: string } };
}

describe("Pusher's limits and errors", () => {
  const event = (fields: Record<string, unknown> = {}) => ({ name: "E", channel: "limits", data: JSON.stringify({ ok: true }), ...fields });

  it("accepts an event and a batch with {}", async () => {
    expect(await pusherPost("/apps/app/events", event())).toEqual({ status: 200, body: {} });
    expect(await pusherPost("/apps/app/batch_events", { batch: [event(), event({ channel: "limits.2" })] })).toEqual({ status: 200, body: {} });
  });

  it("answers 413 for data over 10 KB, in an event or in a batch", async () => {
    const big = JSON.stringify({ blob: "x".repeat(10_240) });
    const limit = `Event data too large: ${new TextEncoder().encode(big).byteLength} bytes, at most 10240`;
    expect(await pusherPost("/apps/app/events", event({ data: big }))).toEqual({ status: 413, body: { error: limit } });
    expect(await pusherPost("/apps/app/batch_events", { batch: [event(), event({ data: big })] })).toEqual({
      status: 413,
      body: { error: `batch[1]: ${limit}` },
    });
    // Exactly at the limit is fine.
    expect((await pusherPost("/apps/app/events", event({ data: "y".repeat(10_240) }))).status).toBe(200);
  });

  it("answers 400 for more than 100 channels or 10 events, and for malformed bodies", async () => {
    const channels = Array.from({ length: 101 }, (_, i) => `c${i}`);
    expect(await pusherPost("/apps/app/events", { name: "E", channels, data: "{}" })).toEqual({
      status: 400,
      body: { error: "Too many channels: an event goes to at most 100" },
    });
    expect(await pusherPost("/apps/app/batch_events", { batch: Array.from({ length: 11 }, () => event()) })).toEqual({
      status: 400,
      body: { error: "Too many events: a batch holds at most 10" },
    });
    expect(await pusherPost("/apps/app/events", { name: "E", data: "{}" })).toEqual({
      status: 400,
      body: { error: "Event must include channel, event name and data" },
    });
    expect(await pusherPost("/apps/app/events", event({ channel: "bad name" }))).toEqual({
      status: 400,
      body: { error: "Invalid event: invalid channel name" },
    });
    expect(await pusherPost("/apps/app/batch_events", [event()])).toEqual({ status: 400, body: { error: 'Body must be {"batch": [events]}' } });
    expect(await pusherPost("/apps/app/batch_events", { batch: [event(), { channel: "c" }] })).toEqual({
      status: 400,
      body: { error: "batch[1]: Event must include channel, event name and data" },
    });
  });

  it("refuses a wrong secret, an expired timestamp, another app's key and an app without a secret with 401", async () => {
    const wrongSecret = await pusherPost("/apps/app/events", event(), { ...APP_A, secret: "not-the-secret" });
    expect(wrongSecret.status).toBe(401);
    expect(wrongSecret.body.error).toMatch(/^Unauthorized: invalid signature/);
    const expired = await pusherPost("/apps/app/events", event(), APP_A, Math.floor(Date.now() / 1000) - 601);
    expect(expired).toEqual({
      status: 401,
      body: { error: "Unauthorized: auth_timestamp is more than 600 s from the server's time; check the publisher's clock" },
    });
    expect(await pusherPost("/apps/app/events", event(), APP_B)).toEqual({
      status: 401,
      body: { error: "Unauthorized: auth_key is not a key of app app" },
    });
    const path = `/apps/${APP_WITHOUT_SECRET.appId}/events`;
    expect(await pusherPost(path, event(), { key: APP_WITHOUT_SECRET.key, secret: "guess" })).toEqual({
      status: 401,
      body: {
        error: `Unauthorized: app ${APP_WITHOUT_SECRET.appId} has no secret, so it cannot verify Pusher-signed requests: add "secret" to its CLIENTS entry`,
      },
    });
  });
});
