/**
 * Issue 2: socket.io-client 2 and 4, laravel-echo, and operators' curl checks
 * connect to the worker exactly as they connected to laravel-echo-server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import {
  CLIENT_VERSIONS,
  closeAll,
  collect,
  connectSocket,
  connected,
  echoConnected,
  makeEcho,
  publishEvent,
  rawSocket,
  uniqueChannel,
  until,
  workerUrl,
  type AnySocket,
  CONNECT_WITH_PID,
} from "../support/clients.ts";
import { TEST_VARS } from "../support/stack.ts";
import { startWorker, type RunningWorker } from "../support/worker.ts";

/**
 * Tests whose outcome would depend on which side of the shared worker's upgrade
 * grace (1.5 s) a client lands, or on answering its 300 ms pings in time, use a
 * worker of their own whose grace and ping timeout outlast any test: on a loaded
 * machine they pass or fail the same way. Tests that need the grace to run out
 * (clients that never upgrade) stay on the shared worker.
 */
let patient: RunningWorker;
beforeAll(async () => {
  patient = await startWorker({ ...TEST_VARS, UPGRADE_GRACE: "60000", PING_TIMEOUT: "20000", AUTH_HOST: inject("authUrl") });
});
afterAll(() => patient?.stop());
afterEach(closeAll);

const PING_INTERVAL = Number(TEST_VARS.PING_INTERVAL);
/** How long to wait for three heartbeats: a bound for a loaded machine, not a timing assertion. */
const HEARTBEATS_WITHIN_MS = 30_000;
const TRANSPORT_MODES = [
  { mode: "default (polling, then upgrade)", options: {}, expected: "websocket", url: () => patient.url },
  { mode: "websocket only", options: { transports: ["websocket"] }, expected: "websocket", url: workerUrl },
  { mode: "polling only", options: { transports: ["polling"] }, expected: "polling", url: workerUrl },
] as const;

/** Engine.IO 4 servers ping every PING_INTERVAL; these tests look at the other frames. */
const withoutPings = (frames: string[]) => frames.filter((frame) => frame !== "2");

/** Counts heartbeats as the client sees them: EIO 4 clients get pings, EIO 3 clients get pongs. */
function countHeartbeats(socket: AnySocket, version: 2 | 4): () => number {
  let beats = 0;
  socket.io.engine.on(version === 4 ? "ping" : "pong", () => beats++);
  return () => beats;
}

describe.each(CLIENT_VERSIONS)("socket.io-client %i", (version) => {
  it.each(TRANSPORT_MODES)("connects with $mode, survives heartbeats, reconnects when dropped", async ({ options, expected, url }) => {
    const socket = await connected(connectSocket(version, options, url()));
    expect(socket.id).toMatch(/^\d+\.\d+$/);
    await until(() => expect(socket.io.engine.transport.name).toBe(expected));

    const disconnects = collect<string>();
    socket.on("disconnect", disconnects.push);
    const beats = countHeartbeats(socket, version);
    await until(() => expect(beats()).toBeGreaterThanOrEqual(3), HEARTBEATS_WITHIN_MS);
    expect(disconnects.items).toEqual([]);
    expect(socket.connected).toBe(true);

    // A packet the server cannot parse makes it drop the connection; the client comes back.
    const firstId = socket.id;
    const reconnected = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.io.engine.write("9 not a socket.io packet");
    await reconnected;
    expect(disconnects.items.length).toBe(1);
    expect(socket.id).not.toBe(firstId);
    expect(socket.connected).toBe(true);
  });

  it("gives laravel-echo a socket id, the one the server uses for toOthers", async () => {
    const echo = await echoConnected(makeEcho(version));
    const socketId = echo.socketId();
    expect(socketId).toMatch(/^\d+\.\d+$/);

    // The same id excludes this client from a toOthers publish while others still receive it.
    const channel = uniqueChannel("orders");
    const other = await echoConnected(makeEcho(version));
    const mine = collect();
    const theirs = collect();
    echo.channel(channel).listen(".Shipped", mine.push);
    other.channel(channel).listen(".Shipped", theirs.push);
    await until(async () => {
      await publishEvent({ channel, name: "Shipped", data: { probe: true } });
      expect(mine.items.length).toBeGreaterThan(0);
      expect(theirs.items.length).toBeGreaterThan(0);
    });
    await publishEvent({ channel, name: "Shipped", data: { last: true }, socket_id: socketId });
    await until(() => expect(theirs.items).toContainEqual({ last: true }));
    // A channel keeps its order: once the next message reaches this client, the excluded one never will.
    await publishEvent({ channel, name: "Shipped", data: { after: true } });
    await until(() => expect(mine.items).toContainEqual({ after: true }));
    expect(mine.items).not.toContainEqual({ last: true });
  });
});

describe("operator checks", () => {
  it("curl /socket.io/?transport=polling prints an Engine.IO 3 open packet", async () => {
    const response = await fetch(`${workerUrl()}/socket.io/?transport=polling`);
    expect(response.status).toBe(200);
    const body = await response.text();
    const match = /^(\d+):0(\{.*\})$/.exec(body);
    expect(match).not.toBeNull();
    expect(Number(match![1])).toBe(match![2]!.length + 1);
    const open = JSON.parse(match![2]!);
    expect(open).toMatchObject({ upgrades: ["websocket"], pingInterval: PING_INTERVAL, pingTimeout: Number(TEST_VARS.PING_TIMEOUT) });
    expect(response.headers.get("set-cookie")).toMatch(new RegExp(`^io=${open.sid}; Path=/; HttpOnly; SameSite=Strict`));
  });

  it("a WebSocket to /socket.io/?transport=websocket gets the open packet (and 40 for Engine.IO 3)", async () => {
    const eio3 = await rawSocket("transport=websocket");
    await until(() => expect(eio3.frames.length).toBeGreaterThanOrEqual(2));
    expect(JSON.parse(eio3.frames[0]!.slice(1))).toMatchObject({ sid: expect.any(String), upgrades: [] });
    expect(eio3.frames[0]![0]).toBe("0");
    expect(eio3.frames[1]).toBe("40");

    const eio4 = await rawSocket("EIO=4&transport=websocket");
    await until(() => expect(eio4.frames.length).toBeGreaterThanOrEqual(1));
    expect(JSON.parse(eio4.frames[0]!.slice(1))).toMatchObject({ maxPayload: Number(TEST_VARS.MAX_PAYLOAD) });
    eio4.ws.send("40");
    // Nothing but pings comes unasked: the one other frame is the reply to the client's CONNECT.
    await until(() => expect(withoutPings(eio4.frames)).toEqual([eio4.frames[0], expect.stringMatching(CONNECT_WITH_PID)]));
  });

  it("GET / answers OK", async () => {
    const response = await fetch(`${workerUrl()}/`);
    expect(await response.text()).toBe("OK");
  });
});

describe("Engine.IO errors", () => {
  const cases = [
    { name: "unknown transport", query: "EIO=4&transport=carrier-pigeon", status: 400, body: { code: 0, message: "Transport unknown" } },
    { name: "unknown sid", query: "EIO=4&transport=polling&sid=nope", status: 400, body: { code: 1, message: "Session ID unknown" } },
    { name: "bad handshake method", query: "EIO=4&transport=polling", method: "POST", status: 400, body: { code: 2, message: "Bad handshake method" } },
    { name: "websocket transport without upgrade", query: "EIO=4&transport=websocket", status: 400, body: { code: 3, message: "Bad request" } },
    { name: "unsupported protocol version", query: "EIO=7&transport=polling", status: 400, body: { code: 5, message: "Unsupported protocol version" } },
    { name: "unknown app", query: "EIO=4&transport=polling&appId=nobody", status: 403, body: { code: 4, message: "Forbidden" } },
  ];
  it.each(cases)("$name: $status with code $body.code", async ({ query, method, status, body }) => {
    const response = await fetch(`${workerUrl()}/socket.io/?${query}`, {
      method: method ?? "GET",
      headers: { origin: "https://app.example.com" },
    });
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject(body);
    expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(response.headers.get("access-control-allow-credentials")).toBe("true");
  });

  it("answers CORS with * when the request has no Origin", async () => {
    const response = await fetch(`${workerUrl()}/socket.io/?EIO=4&transport=polling`);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
  });
});

describe("polling sessions", () => {
  const handshake = async (eio: 3 | 4, url = workerUrl()) => {
    const body = await (await fetch(`${url}/socket.io/?EIO=${eio}&transport=polling`)).text();
    return JSON.parse(body.slice(body.indexOf("{"))).sid as string;
  };
  const pollUrl = (eio: number, sid: string, url = workerUrl()) => `${url}/socket.io/?EIO=${eio}&transport=polling&sid=${sid}`;

  it("upgrades: 2probe/3probe, the pending poll gets a noop, then polling with the sid is refused", async () => {
    const sid = await handshake(4, patient.url);
    // Polls as a client does, answering pings, until a poll is released with the noop.
    const polling = (async () => {
      for (;;) {
        const packets = (await (await fetch(pollUrl(4, sid, patient.url))).text()).split("\x1e");
        if (packets.includes("6")) return packets;
        if (packets.includes("2")) await fetch(pollUrl(4, sid, patient.url), { method: "POST", body: "3" });
      }
    })();
    const { ws, frames } = await rawSocket(`EIO=4&transport=websocket&sid=${sid}`, patient.url);
    ws.send("2probe");
    await until(() => expect(frames).toEqual(["3probe"]));
    expect(await polling).toEqual(["6"]);
    ws.send("5");
    ws.send("40");
    await until(() => expect(withoutPings(frames)[1]).toMatch(/^40\{"sid":/));
    const late = await fetch(pollUrl(4, sid, patient.url));
    expect(late.status).toBe(400);
    expect(await late.json()).toMatchObject({ code: 3 });
  });

  it("Engine.IO 3 polling framing carries the connect packet after the grace period", async () => {
    const sid = await handshake(3);
    // No upgrade: after UPGRADE_GRACE the session is served over polling and sends 40.
    const body = await (await fetch(pollUrl(3, sid))).text();
    expect(body).toBe("2:40");
  });

  it("Engine.IO 3 JSONP polling wraps payloads in ___eio[n] and reads d= bodies", async () => {
    // No grace runs out here, so the poll carries the pong alone.
    const open = await (await fetch(`${patient.url}/socket.io/?EIO=3&transport=polling&j=0`)).text();
    const match = /^___eio\[0\]\("(.*)"\);$/.exec(open);
    expect(match).not.toBeNull();
    const sid = /\\"sid\\":\\"([\d.]+)\\"/.exec(match![1]!)![1];
    const url = `${patient.url}/socket.io/?EIO=3&transport=polling&j=1&sid=${sid}`;
    const pong = fetch(url).then((r) => r.text());
    const posted = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "d=" + encodeURIComponent("1:2"),
    });
    expect(await posted.text()).toBe("ok");
    expect(await pong).toBe('___eio[1]("1:3");');
  });

  it("a client cannot forge the Worker's handshake headers to reset someone's session", async () => {
    const sid = await handshake(4);
    const forged = await fetch(pollUrl(4, sid), { headers: { "x-echo-sid": sid, "x-echo-app": "app" } });
    // Served as an ordinary poll of the existing session (a ping arrives), not a new open packet.
    expect(await forged.text()).toBe("2");
  });

  it("overlapping polls close the session", async () => {
    // Engine.IO 3 (no server pings) and no grace running out: nothing answers a poll,
    // so two polls sent together overlap whichever arrives first.
    const sid = await handshake(3, patient.url);
    const answers = await Promise.all(
      [1, 2].map(async () => {
        const response = await fetch(pollUrl(3, sid, patient.url));
        return { status: response.status, body: await response.text() };
      }),
    );
    const [pending, overlapping] = answers.sort((a, b) => a.status - b.status);
    expect(overlapping!.status).toBe(400);
    expect(pending).toEqual({ status: 200, body: "1:1" });
    expect((await fetch(pollUrl(3, sid, patient.url))).status).toBe(400);
  });
});

describe("bad input from one client leaves others unaffected", () => {
  const badFrames = [
    { name: "garbage frame", send: "not engine.io" },
    { name: "unknown engine packet type", send: "9hello" },
    { name: "malformed socket.io packet", send: "42[unterminated" },
    { name: "unknown socket.io packet type", send: "47[]" },
    { name: "oversized frame", send: "42" + JSON.stringify(["x", "y".repeat(Number(TEST_VARS.MAX_PAYLOAD))]) },
  ];

  it.each(badFrames)("$name: that client is closed, a second client still receives", async ({ send }) => {
    const channel = uniqueChannel("bystander");
    const bystander = await echoConnected(makeEcho(4));
    const received = collect();
    bystander.channel(channel).listen(".Ping", received.push);

    const bad = await rawSocket("EIO=4&transport=websocket");
    bad.ws.send("40");
    await until(() => expect(withoutPings(bad.frames)).toHaveLength(2));
    bad.ws.send(send);
    const code = await bad.closed;
    expect([1002, 1009]).toContain(code);

    await until(async () => {
      await publishEvent({ channel, name: "Ping", data: { ok: 1 } });
      expect(received.items.length).toBeGreaterThan(0);
    });
  });

  it("oversized polling body: 413 and that session is closed", async () => {
    const body = await (await fetch(`${workerUrl()}/socket.io/?EIO=4&transport=polling`)).text();
    const sid = JSON.parse(body.slice(1)).sid;
    const url = `${workerUrl()}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    const response = await fetch(url, { method: "POST", body: "4" + "x".repeat(Number(TEST_VARS.MAX_PAYLOAD)) });
    expect(response.status).toBe(413);
    expect((await fetch(url)).status).toBe(400);
  });

  it("garbage polling body: 400 and that session is closed", async () => {
    const body = await (await fetch(`${workerUrl()}/socket.io/?EIO=3&transport=polling`)).text();
    const sid = JSON.parse(body.slice(body.indexOf("{"))).sid;
    const url = `${workerUrl()}/socket.io/?EIO=3&transport=polling&sid=${sid}`;
    const response = await fetch(url, { method: "POST", body: "99:garbage" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 3 });
    expect((await fetch(url)).status).toBe(400);
  });
});
