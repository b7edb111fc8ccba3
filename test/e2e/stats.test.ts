/**
 * Issue 5: `/stats` counts clients, channels, subscriptions and messages across
 * the edge, and its dashboard renders in a real browser. Whole-app numbers use the
 * `other-app` app, which no other test file connects to, so the deltas are exact.
 */
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { closeAll, collect, echoConnected, makeEcho, publishEvent, uniqueChannel, until, workerUrl, type ClientVersion } from "../support/clients.ts";
import { TEST_APP, TEST_VARS } from "../support/stack.ts";
import { startWorker } from "../support/worker.ts";
import type { Stats } from "../../worker/routes/stats.ts";

afterEach(closeAll);

const OTHER_APP = { appId: "other-app", key: "other-key" };
const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = resolve(import.meta.dirname, "../../test-results/stats.png");


async function stats(query = "", url = workerUrl()): Promise<{ status: number; body: Stats }> {
  const response = await fetch(`${url}/stats${query}`);
  return { status: response.status, body: (await response.json()) as Stats };
}

const appStats = async () => (await stats(`?auth_key=${OTHER_APP.key}`)).body.app!;

function otherAppEcho(version: ClientVersion, userId?: number) {
  const auth = userId === undefined ? {} : { auth: { headers: { Authorization: `Bearer ${userId}` } } };
  return echoConnected(makeEcho(version, { query: { appId: OTHER_APP.appId }, ...auth }));
}

const publish = (channel: string, n: number) => publishEvent({ channel, name: "Tick", data: { n } }, OTHER_APP);

describe("GET /stats as JSON", () => {
  it("moves by exactly the clients, channels, subscriptions and messages a test adds, and back when they leave", async () => {
    const before = await appStats();
    const busy = uniqueChannel("stats.busy");
    const quiet = uniqueChannel("stats.quiet");
    const room = uniqueChannel("presence-stats.room");

    const [first, second, third] = [await otherAppEcho(4), await otherAppEcho(2), await otherAppEcho(4, 3)];
    const received = { first: collect(), second: collect(), third: collect() };
    first.channel(busy).listen(".Tick", received.first.push);
    second.channel(busy).listen(".Tick", received.second.push);
    third.channel(quiet).listen(".Tick", received.third.push);
    third.join(room.slice("presence-".length));
    await until(async () =>
      expect(await appStats()).toMatchObject({
        clients: before.clients + 3,
        channels: before.channels + 3,
        subscriptions: before.subscriptions + 4,
      }),
    );

    for (let n = 0; n < 5; n++) expect((await publish(busy, n)).status).toBe(200);
    for (let n = 0; n < 2; n++) expect((await publish(quiet, n)).status).toBe(200);
    await until(() => expect([received.first.items.length, received.second.items.length, received.third.items.length]).toEqual([5, 5, 2]));
    await until(async () =>
      expect(await appStats()).toMatchObject({
        messages_received: before.messages_received + 7,
        messages_delivered: before.messages_delivered + 5 * 2 + 2,
      }),
    );
    const during = await appStats();
    expect(during.id).toBe(OTHER_APP.appId);
    expect(during.busiest_channels).toEqual(
      expect.arrayContaining([
        { name: busy, kind: "public", subscription_count: 2, user_count: null },
        { name: quiet, kind: "public", subscription_count: 1, user_count: null },
        { name: room, kind: "presence", subscription_count: 1, user_count: 1 },
      ]),
    );
    const counts = during.busiest_channels.map((channel) => channel.subscription_count);
    expect(counts).toEqual([...counts].sort((a, b) => b - a));

    closeAll();
    await until(async () =>
      expect(await appStats()).toMatchObject({
        clients: before.clients,
        channels: before.channels,
        subscriptions: before.subscriptions,
        messages_received: before.messages_received + 7,
      }),
    );
  });

  it("gives totals over every app without a key, and no app's detail", async () => {
    const { status, body } = await stats();
    expect(status).toBe(200);
    expect(Object.keys(body).sort()).toEqual(["channels", "clients", "messages_delivered", "messages_received", "subscriptions", "uptime"]);
    const app = await appStats();
    for (const counter of ["clients", "channels", "subscriptions", "messages_received", "messages_delivered"] as const) {
      expect(body[counter]).toBeGreaterThanOrEqual(app[counter]);
    }
    expect(body.uptime).toBeGreaterThan(0);
  });

  it("refuses a wrong key instead of answering as if none was given", async () => {
    expect(await stats("?auth_key=wrong")).toEqual({ status: 403, body: { error: "Unauthorized" } });
    const bearer = await fetch(`${workerUrl()}/stats`, { headers: { authorization: "Bearer wrong" } });
    expect(bearer.status).toBe(403);
  });

  it("refuses callers without an app key when STATS_REQUIRE_KEY=true, and logs each call (without its key) in DEV_MODE", async () => {
    const worker = await startWorker({ ...TEST_VARS, STATS_REQUIRE_KEY: "true", DEV_MODE: "true" });
    try {
      expect(await stats("", worker.url)).toEqual({ status: 403, body: { error: "Unauthorized" } });
      expect(await stats("?auth_key=wrong", worker.url)).toEqual({ status: 403, body: { error: "Unauthorized" } });
      expect(await stats(`?auth_key=${TEST_APP.key}`, worker.url)).toMatchObject({ status: 200, body: { app: { id: TEST_APP.appId } } });
      const bearer = await fetch(`${worker.url}/stats`, { headers: { authorization: `Bearer ${OTHER_APP.key}` } });
      expect(await bearer.json()).toMatchObject({ app: { id: OTHER_APP.appId } });
      expect((await fetch(`${worker.url}/apps/${TEST_APP.appId}/status?auth_key=${TEST_APP.key}`)).status).toBe(200);
      await until(() => {
        const calls = worker.output().split("\n").filter((line) => line.includes('"event":"api_call"'));
        expect(calls.map((line) => JSON.parse(line.slice(line.indexOf("{"))))).toEqual(
          expect.arrayContaining([
            { level: "debug", event: "api_call", method: "GET", path: "/stats", status: 403 },
            { level: "debug", event: "api_call", method: "GET", path: "/stats", status: 200 },
            { level: "debug", event: "api_call", method: "GET", path: `/apps/${TEST_APP.appId}/status`, status: 200 },
          ]),
        );
      });
      expect(worker.output()).not.toContain(TEST_APP.key);
      expect(worker.output()).not.toContain(OTHER_APP.key);
    } finally {
      await worker.stop();
    }
  });
});

describe("the /stats dashboard", () => {
  it("serves JSON, not the page, to a browser without a key", async () => {
    const response = await fetch(`${workerUrl()}/stats`, { headers: { accept: "text/html" } });
    expect(response.headers.get("content-type")).toMatch(/application\/json/);
  });

  it("renders live numbers, charts and channels in headless Chromium, loading nothing from elsewhere", async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's browser with \`sudo apt-get install -y chromium\` (.ci/run does this)`);
    }
    const busy = uniqueChannel("dashboard.orders");
    const room = uniqueChannel("presence-dashboard.lobby");
    const clients = [await otherAppEcho(4), await otherAppEcho(2), await otherAppEcho(4, 1), await otherAppEcho(4, 2)];
    for (const echo of clients) echo.channel(busy);
    clients[2]!.join(room.slice("presence-".length));
    clients[3]!.join(room.slice("presence-".length));
    await until(async () => expect((await appStats()).busiest_channels.map((c) => c.name)).toEqual(expect.arrayContaining([busy, room])));
    // A steady trickle of messages, so the message chart has something to draw.
    let publishing = true;
    const trickle = (async () => {
      for (let n = 0; publishing; n++) await publish(busy, n);
    })();

    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const requested: string[] = [];
      const pageErrors: string[] = [];
      page.on("request", (request) => void requested.push(request.url()));
      page.on("pageerror", (error) => void pageErrors.push(String(error)));

      const response = await page.goto(`${workerUrl()}/stats?auth_key=${OTHER_APP.key}`);
      expect(response?.headers()["content-type"]).toMatch(/text\/html/);
      const text = (selector: string) => page.locator(selector).textContent();
      await until(async () => {
        expect(await text("#app")).toBe(OTHER_APP.appId);
        expect(Number((await text("#clients"))!.replace(/,/g, ""))).toBeGreaterThanOrEqual(clients.length);
        expect(await text("#channel-rows")).toContain(busy);
        expect(await text("#channel-rows")).toContain(room);
      }, 20_000);
      const busyRow = page.locator("#channel-rows tr", { hasText: busy });
      expect(await busyRow.locator("td").allTextContents()).toEqual([busy, "public", "4", "–", ""]);
      const roomRow = page.locator("#channel-rows tr", { hasText: room });
      expect(await roomRow.locator("td").allTextContents()).toEqual([room, "presence", "2", "2", ""]);
      // Both charts have drawn lines over several polls, and the delivery rate is above zero.
      await until(async () => {
        for (const chart of ["#chart-connections", "#chart-messages"]) {
          const points = await page.locator(`${chart} polyline`).first().getAttribute("points");
          expect(points?.split(" ").length ?? 0).toBeGreaterThanOrEqual(3);
        }
        expect(await text("#delivered-rate")).toMatch(/^[1-9][\d,.]* per second$|^0\.[1-9]\d* per second$/);
      }, 30_000);

      mkdirSync(resolve(SCREENSHOT, ".."), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      expect(pageErrors).toEqual([]);
      expect(requested.filter((url) => !url.startsWith(workerUrl()))).toEqual([]);
    } finally {
      publishing = false;
      await trickle;
      await browser?.close();
    }
  });
});
