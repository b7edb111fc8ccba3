/**
 * Issue 9, items 9 to 11: laravel-echo-server's HTTP API, details a migrating team
 * relies on. The presence user list carries each member's user_info; `/channels` and
 * `/status` follow a subscribe, an unsubscribe and a disconnect as they happen;
 * every API answer, refusals included, carries the configured CORS origin. Counts
 * use API_APP, which only this file connects to.
 */
import { afterEach, describe, expect, it } from "vitest";
import { closeAll, echoConnected, makeEcho, uniqueChannel, until, workerUrl, type ClientVersion } from "../support/clients.ts";
import { API_APP, TEST_APP, TEST_VARS } from "../support/stack.ts";

afterEach(closeAll);

async function get(path: string, init: RequestInit = {}) {
  const response = await fetch(workerUrl() + path, init);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text.startsWith("{") ? JSON.parse(text) : text };
}

const api = (path: string) => get(`/apps/${API_APP.appId}${path}`, { headers: { authorization: `Bearer ${API_APP.key}` } });
const channelPath = (channel: string) => `/channels/${encodeURIComponent(channel)}`;

function client(version: ClientVersion, userId?: number) {
  const auth = userId === undefined ? {} : { auth: { headers: { Authorization: `Bearer ${userId}` } } };
  return echoConnected(makeEcho(version, { query: { appId: API_APP.appId }, ...auth }));
}

describe("GET /apps/:appId/channels/:channel/users", () => {
  it("lists each member once with the user_info Laravel's auth gave", async () => {
    const channel = uniqueChannel("presence-api.users");
    const name = channel.slice("presence-".length);
    const taylor = await client(4, 1);
    taylor.join(name);
    await until(async () => expect((await api(channelPath(channel))).body).toMatchObject({ user_count: 1 }));
    const taylorSecondTab = await client(2, 1);
    const abigail = await client(2, 2);
    taylorSecondTab.join(name);
    abigail.join(name);
    await until(async () => expect((await api(channelPath(channel))).body).toEqual({ subscription_count: 3, occupied: true, user_count: 2 }));
    expect(await api(`${channelPath(channel)}/users`)).toMatchObject({
      status: 200,
      body: {
        users: [
          { id: 1, user_info: { id: 1, name: "Taylor" } },
          { id: 2, user_info: { id: 2, name: "Abigail" } },
        ],
      },
    });
  });
});

describe("the API follows subscriptions as they happen", () => {
  it("/channels agrees with the channel itself after each subscribe, unsubscribe and disconnect", async () => {
    const channel = uniqueChannel("api.live");
    const count = async () => (await api(channelPath(channel))).body.subscription_count;
    const directory = async () => (await api(`/channels?filter_by_prefix=${encodeURIComponent(channel)}`)).body;
    const listed = (n: number) => ({ channels: n === 0 ? {} : { [channel]: { subscription_count: n, occupied: true } } });
    // A channel answers once the app's directory has its change, so as soon as the
    // channel shows a change, /channels must show it too: no reporting interval between them.
    const first = await client(4);
    first.channel(channel);
    await until(async () => expect(await count()).toBe(1));
    expect(await directory()).toEqual(listed(1));
    const second = await client(2);
    second.channel(channel);
    await until(async () => expect(await count()).toBe(2));
    expect(await directory()).toEqual(listed(2));
    first.leave(channel);
    await until(async () => expect(await count()).toBe(1));
    expect(await directory()).toEqual(listed(1));
    second.disconnect();
    await until(async () => expect(await count()).toBe(0));
    expect(await directory()).toEqual(listed(0));
  });

  it("/status counts a connection from its handshake to its disconnect", async () => {
    const connections = async () => (await api("/status")).body.subscription_count;
    // Whatever the tests before this one left is gone by now.
    await until(async () => expect(await connections()).toBe(0));
    const first = await client(4);
    const second = await client(2);
    await until(async () => expect(await connections()).toBe(2), 2000);
    first.disconnect();
    await until(async () => expect(await connections()).toBe(1), 2000);
    second.disconnect();
    await until(async () => expect(await connections()).toBe(0), 2000);
  });
});

describe("CORS on every API answer (ALLOW_ORIGIN)", () => {
  const key = `auth_key=${TEST_APP.key}`;
  const app = `/apps/${TEST_APP.appId}`;
  const json = (body: unknown): RequestInit => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const event = (data: unknown) => json({ channel: uniqueChannel("cors"), name: "Ping", data });
  const answers: [string, string, RequestInit, number][] = [
    ["GET /status", `${app}/status?${key}`, {}, 200],
    ["GET /channels", `${app}/channels?${key}`, {}, 200],
    ["GET /channels/:channel", `${app}/channels/orders?${key}`, {}, 200],
    ["GET /channels/:channel/users", `${app}/channels/presence-room/users?${key}`, {}, 200],
    ["a 400 for an invalid channel name", `${app}/channels/has%20space?${key}`, {}, 400],
    ["a 400 for the users of a public channel", `${app}/channels/orders/users?${key}`, {}, 400],
    ["a 403 without the app key", `${app}/channels`, {}, 403],
    ["a 404 for an unknown route", `${app}/no-such-route?${key}`, {}, 404],
    ["POST /events", `${app}/events?${key}`, event({ n: 1 }), 200],
    ["a 400 from /events for a body that is not JSON", `${app}/events?${key}`, { method: "POST", body: "{nope" }, 400],
    ["a 403 from /events with a wrong key", `${app}/events?auth_key=wrong`, event({ n: 1 }), 403],
    ["a 413 from /events for data over the limit", `${app}/events?${key}`, event("x".repeat(100_000)), 413],
    ["a 401 from /publish without a signature", `${app}/publish`, json({ messages: [] }), 401],
    ["a 404 from /publish for an unknown app", "/apps/no-such-app/publish", json({ messages: [] }), 404],
    ["GET /stats", "/stats", {}, 200],
    ["a 403 from /stats with a wrong key", "/stats?auth_key=wrong", {}, 403],
  ];

  it.each(answers)("%s", async (_, path, init, status) => {
    for (const origin of TEST_VARS.ALLOW_ORIGIN!.split(",")) {
      const response = await get(path, { ...init, headers: { ...init.headers, origin } });
      expect(response.status).toBe(status);
      expect(response.headers.get("access-control-allow-origin")).toBe(origin);
      expect(response.headers.get("vary")).toMatch(/Origin/);
    }
  });
});
