/**
 * Issue 5: laravel-echo-server's HTTP API (`/apps/:appId/status`, `/channels`,
 * `/channels/:name`, `/channels/:name/users`) answers with the same shapes and
 * status codes, with counts that match real connections, and carries the
 * configured CORS headers.
 */
import { afterEach, describe, expect, inject, it } from "vitest";
import { closeAll, echoConnected, makeEcho, uniqueChannel, until, workerUrl, type ClientVersion } from "../support/clients.ts";
import { TEST_VARS } from "../support/stack.ts";

afterEach(closeAll);

const app = inject("testApp");

async function get(path: string, headers: Record<string, string> = {}) {
  const response = await fetch(workerUrl() + path, { headers });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text.startsWith("{") ? JSON.parse(text) : text };
}

/** A GET with the test app's key as laravel-echo-server's clients send it. */
const api = (path: string) => get(`/apps/${app.appId}${path}`, { authorization: `Bearer ${app.key}` });
const channelPath = (channel: string) => `/channels/${encodeURIComponent(channel)}`;

function presenceMember(version: ClientVersion, userId: number) {
  return echoConnected(makeEcho(version, { auth: { headers: { Authorization: `Bearer ${userId}` } } }));
}

describe("channel routes", () => {
  it("count the subscriptions and distinct users of a presence channel, and forget it once everyone left", async () => {
    const channel = uniqueChannel("presence-api.room");
    const taylor = await presenceMember(4, 1);
    const taylorSecondTab = await presenceMember(2, 1);
    const abigail = await presenceMember(4, 2);
    for (const echo of [taylor, taylorSecondTab, abigail]) echo.join(channel.slice("presence-".length));

    await until(async () => expect((await api(channelPath(channel))).body).toEqual({ subscription_count: 3, occupied: true, user_count: 2 }));
    const users = await api(`${channelPath(channel)}/users`);
    expect(users.status).toBe(200);
    expect(users.body.users.map((user: { id: number }) => user.id).sort()).toEqual([1, 2]);
    // The directory learns about the channel from the channel itself, about a second later.
    await until(async () =>
      expect((await api(`/channels?filter_by_prefix=${encodeURIComponent(channel)}`)).body).toEqual({
        channels: { [channel]: { subscription_count: 3, occupied: true } },
      }),
    );

    const status = await api("/status");
    expect(status.status).toBe(200);
    expect(status.body).toEqual({
      subscription_count: expect.any(Number),
      uptime: expect.any(Number),
      memory_usage: { rss: null, heapTotal: null, heapUsed: null, external: null, arrayBuffers: null },
    });
    // Other test files share this app, so its connection count is at least ours.
    expect(status.body.subscription_count).toBeGreaterThanOrEqual(3);

    closeAll();
    await until(async () => expect((await api(channelPath(channel))).body).toEqual({ subscription_count: 0, occupied: false, user_count: 0 }));
    expect((await api(`${channelPath(channel)}/users`)).body).toEqual({ users: [] });
    await until(async () => expect((await api(`/channels?filter_by_prefix=${encodeURIComponent(channel)}`)).body).toEqual({ channels: {} }));
  });

  it("list occupied channels, filtered by prefix, with Laravel's dotted names and URL-encoded ones", async () => {
    const prefix = uniqueChannel("App.Models.Order");
    const [orders, invoices, team] = [`${prefix}.orders`, `${prefix}.invoices`, `${prefix}:team/chat#1`];
    const first = await echoConnected(makeEcho(4));
    const second = await echoConnected(makeEcho(2));
    first.channel(orders);
    second.channel(orders);
    second.channel(invoices);
    first.channel(team);

    const expected = {
      [orders]: { subscription_count: 2, occupied: true },
      [invoices]: { subscription_count: 1, occupied: true },
      [team]: { subscription_count: 1, occupied: true },
    };
    await until(async () => expect((await api(`/channels?filter_by_prefix=${encodeURIComponent(prefix)}`)).body).toEqual({ channels: expected }));
    // Without a filter the same entries are there, among other files' channels.
    expect((await api("/channels")).body.channels).toMatchObject(expected);
    // Public channels have no user count, exactly like laravel-echo-server.
    expect((await api(channelPath(orders))).body).toEqual({ subscription_count: 2, occupied: true });
    expect((await api(channelPath(invoices))).body).toEqual({ subscription_count: 1, occupied: true });
    expect((await api(channelPath(team))).body).toEqual({ subscription_count: 1, occupied: true });
  });

  it("answer for channels nobody joined", async () => {
    expect(await api(channelPath(uniqueChannel("nobody")))).toMatchObject({ status: 200, body: { subscription_count: 0, occupied: false } });
    expect((await api(channelPath(uniqueChannel("presence-nobody")))).body).toEqual({ subscription_count: 0, occupied: false, user_count: 0 });
  });

  it("refuse a user list for channels that are not presence channels", async () => {
    for (const channel of [uniqueChannel("public"), uniqueChannel("private-orders")]) {
      expect(await api(`${channelPath(channel)}/users`)).toMatchObject({
        status: 400,
        body: { error: "User list is only possible for Presence Channels" },
      });
    }
  });

  it("reject channel names that cannot exist", async () => {
    expect(await api(channelPath("has space"))).toMatchObject({ status: 400, body: { error: "Invalid channel name" } });
  });
});

describe("authentication", () => {
  const routes = ["/status", "/channels", channelPath("orders.1"), `${channelPath("presence-room.1")}/users`];

  it.each(routes)("GET /apps/:appId%s takes the key as ?auth_key= or a Bearer token", async (route) => {
    expect((await get(`/apps/${app.appId}${route}?auth_key=${app.key}`)).status).toBe(200);
    expect((await get(`/apps/${app.appId}${route}`, { authorization: `Bearer ${app.key}` })).status).toBe(200);
  });

  it.each(routes)("GET /apps/:appId%s answers 403 without the app's own key", async (route) => {
    const refused = { status: 403, body: { error: "Unauthorized" } };
    expect(await get(`/apps/${app.appId}${route}`)).toMatchObject(refused);
    expect(await get(`/apps/${app.appId}${route}?auth_key=wrong`)).toMatchObject(refused);
    expect(await get(`/apps/${app.appId}${route}`, { authorization: "Bearer wrong" })).toMatchObject(refused);
    // Another app's key does not open this app.
    expect(await get(`/apps/${app.appId}${route}?auth_key=other-key`)).toMatchObject(refused);
    expect(await get(`/apps/no-such-app${route}?auth_key=${app.key}`)).toMatchObject(refused);
  });
});

describe("CORS (ALLOW_ORIGIN)", () => {
  const [allowed, alsoAllowed] = TEST_VARS.ALLOW_ORIGIN!.split(",");
  const key = `auth_key=${app.key}`;

  it.each([
    ["a success", `/apps/${app.appId}/status?${key}`, 200],
    ["a 403", `/apps/${app.appId}/status?auth_key=wrong`, 403],
    ["a 404", `/apps/${app.appId}/no-such-route?${key}`, 404],
    ["/stats", "/stats", 200],
  ])("lets a listed origin read %s", async (_, path, status) => {
    for (const origin of [allowed!, alsoAllowed!]) {
      const response = await get(path, { origin });
      expect(response.status).toBe(status);
      expect(response.headers.get("access-control-allow-origin")).toBe(origin);
      expect(response.headers.get("vary")).toMatch(/Origin/);
    }
  });

  it("gives an unlisted origin no CORS headers", async () => {
    const response = await get(`/apps/${app.appId}/status?${key}`, { origin: "https://evil.example.com" });
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers a preflight without a key", async () => {
    for (const path of [`/apps/${app.appId}/channels`, `/apps/${app.appId}/events`, "/stats"]) {
      const response = await fetch(workerUrl() + path, {
        method: "OPTIONS",
        headers: { origin: allowed!, "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type" },
      });
      expect(response.status).toBe(204);
      expect(response.headers.get("access-control-allow-origin")).toBe(allowed);
      expect(response.headers.get("access-control-allow-methods")).toBe("GET,POST");
      expect(response.headers.get("access-control-allow-headers")?.split(",")).toEqual(expect.arrayContaining(["Authorization", "Content-Type"]));
    }
  });

  it("lets a browser page on a listed origin publish with POST /apps/:appId/events", async () => {
    const response = await fetch(`${workerUrl()}/apps/${app.appId}/events`, {
      method: "POST",
      headers: { origin: allowed!, "content-type": "application/json", authorization: `Bearer ${app.key}` },
      body: JSON.stringify({ channel: uniqueChannel("cors"), name: "Ping", data: {} }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe(allowed);
  });
});
