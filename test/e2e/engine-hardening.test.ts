/**
 * Issue 9 items 1-3, 6, 13 and issue 11's socket ids, from the outside: what a
 * stranger can do to a polling session and its upgrade, and what a client on a slow
 * network gets. Runs its own worker (MAX_CLIENTS=20, a small polling outbox, a
 * short upgrade timeout, a ping timeout longer than that, as by default) so its
 * limits are this file's alone. Clients that must be somewhere else bind to
 * 127.0.0.2: on the local edge miniflare gives the worker the peer address as
 * CF-Connecting-IP.
 */
import { createServer, request as httpRequest, type IncomingMessage } from "node:http";
import { connect, type Socket } from "node:net";
import Pusher from "pusher";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import {
  CLIENT_VERSIONS,
  closeAll,
  collect,
  connectSocket,
  connected,
  echoConnected,
  makeEcho,
  uniqueChannel,
  until,
  type AnySocket,
  type EchoClient,
  recoverableEvent,
  recoverableFrame,
} from "../support/clients.ts";
import { TEST_APP, TEST_VARS } from "../support/stack.ts";
import { startWorker, type RunningWorker } from "../support/worker.ts";

const MAX_CLIENTS = 20;
const OUTBOX_LIMIT = 20_000;
const UPGRADE_TIMEOUT = 3_000;
const OTHER_APP = { appId: "other-app", key: "other-key" };
const STRANGER = "127.0.0.2";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker({
    ...TEST_VARS,
    MAX_CLIENTS: String(MAX_CLIENTS),
    POLLING_OUTBOX_LIMIT: String(OUTBOX_LIMIT),
    UPGRADE_TIMEOUT: String(UPGRADE_TIMEOUT),
    PING_TIMEOUT: "10000",
    AUTH_HOST: inject("authUrl"),
  });
});
afterAll(() => worker?.stop());

const sockets: WebSocket[] = [];
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  closeAll();
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const asUser = (id: number) => ({ auth: { headers: { Authorization: `Bearer ${id}` } } });
const socketOf = (echo: EchoClient) => echo.connector.socket as unknown as AnySocket;
const engineUrl = (query: string) => `${worker.url}/socket.io/?${query}`;

/** A request from another address than the test's own (127.0.0.1). */
function fetchFromStranger(
  url: string,
  init: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; json(): Promise<unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: init.method ?? "GET", headers: init.headers, localAddress: STRANGER }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, json: async () => JSON.parse(body) }));
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

function publish(channel: string, data: unknown, app: { appId: string; key: string } = TEST_APP) {
  return fetch(`${worker.url}/apps/${app.appId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${app.key}` },
    body: JSON.stringify({ channel, name: "Tick", data }),
  });
}

/** A raw Engine.IO 4 polling client, speaking the protocol by hand. */
async function pollingClient() {
  const body = await (await fetch(engineUrl("EIO=4&transport=polling"))).text();
  const sid: string = JSON.parse(body.slice(1)).sid;
  const url = engineUrl(`EIO=4&transport=polling&sid=${sid}`);
  const post = (payload: string) => fetch(url, { method: "POST", body: payload });
  /** One GET; pings in it are answered, Socket.IO packets returned. */
  const poll = async () => {
    const response = await fetch(url);
    if (response.status !== 200) throw new Error(`poll answered ${response.status}: ${await response.text()}`);
    const packets = (await response.text()).split("\x1e");
    if (packets.includes("2")) await post("3");
    return packets.filter((packet) => packet.startsWith("4")).map((packet) => packet.slice(1));
  };
  /** Connects the Socket.IO namespace and returns once the session answers (it starts after UPGRADE_GRACE). */
  const connectNamespace = async () => {
    await post("40");
    await until(async () => expect((await poll()).some((packet) => packet.startsWith("0{"))).toBe(true));
  };
  const subscribe = (channel: string) => post(`42${JSON.stringify(["subscribe", { channel, auth: {} }])}`);
  /** Polls in the background, as engine.io-client does, until stopped. */
  const keepPolling = () => {
    let polling = true;
    const packets: string[] = [];
    const loop = (async () => {
      while (polling) packets.push(...(await poll()));
    })();
    return {
      packets,
      stop: async () => {
        polling = false;
        await loop;
      },
    };
  };
  return { sid, url, post, poll, connectNamespace, subscribe, keepPolling };
}

/** Socket.IO events `[event, channel, data]` in a list of packets. */
const events = (packets: string[]) => packets.filter((p) => p.startsWith("2[")).map((p) => JSON.parse(p.slice(1)) as unknown[]);

/** A raw WebSocket on this worker that keeps what it receives. */
function rawWebSocket(query: string, localAddress?: string) {
  const ws = new WebSocket(engineUrl(query).replace(/^http/, "ws"), { perMessageDeflate: false, localAddress });
  sockets.push(ws);
  const frames: string[] = [];
  ws.on("message", (data) => {
    const frame = data.toString();
    if (frame === "2") ws.send("3");
    frames.push(frame);
  });
  const refused = new Promise<number>((resolve) => ws.once("unexpected-response", (_req, res: IncomingMessage) => resolve(res.statusCode!)));
  ws.on("error", () => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const opened = new Promise<void>((resolve) => ws.once("open", () => resolve()));
  return { ws, frames, opened, refused, closed };
}

/** Completes the upgrade of a polling session on a raw WebSocket. */
async function upgrade(sid: string, extraQuery = "") {
  const client = rawWebSocket(`EIO=4&transport=websocket&sid=${sid}${extraQuery}`);
  await client.opened;
  client.ws.send("2probe");
  await until(() => expect(client.frames).toContain("3probe"));
  client.ws.send("5");
  return client;
}

describe("socket ids in Pusher's form", () => {
  it.each(CLIENT_VERSIONS)("socket.io-client %i gets a socket id the pusher SDK accepts", async (version) => {
    const pusher = new Pusher({ appId: "1", key: "key", secret: "secret", cluster: "mt1" });
    for (const transports of [["websocket"], ["polling"]]) {
      const echo = await echoConnected(makeEcho(version, { transports }, worker.url));
      const socketId = echo.socketId()!;
      expect(socketId).toMatch(/^\d+\.\d+$/);
      // The SDK's own check, which pusher-php-server shares: it throws on any other form.
      expect(() => pusher.authorizeChannel(socketId, "private-orders")).not.toThrow();
      echo.disconnect();
    }
  });
});

describe("a polling session belongs to the address that opened it", () => {
  it("another address gets 'Session ID unknown' for polls, posts and upgrades, and the owner carries on", async () => {
    const owner = await pollingClient();
    const expectUnknown = async (response: { status: number; json(): Promise<unknown> }) => {
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ code: 1, message: "Session ID unknown" });
    };
    await expectUnknown(await fetchFromStranger(owner.url));
    await expectUnknown(await fetchFromStranger(owner.url, { method: "POST", body: "1" }));
    // The Worker's own headers cannot be forged to claim the owner's address either.
    await expectUnknown(await fetchFromStranger(owner.url, { headers: { "x-echo-address": "127.0.0.1" } }));
    const hijack = rawWebSocket(`EIO=4&transport=websocket&sid=${owner.sid}`, STRANGER);
    expect(await hijack.refused).toBe(400);

    // Nothing changed for the owner: its session connects, subscribes, receives and upgrades.
    await owner.connectNamespace();
    const channel = uniqueChannel("owned");
    await owner.subscribe(channel);
    await until(async () => {
      await publish(channel, { over: "polling" });
      expect(events(await owner.poll())).toContainEqual(recoverableEvent(["Tick", channel, { over: "polling" }]));
    });
    const ws = await upgrade(owner.sid);
    await until(async () => {
      await publish(channel, { over: "websocket" });
      expect(ws.frames).toContainEqual(recoverableFrame(["Tick", channel, { over: "websocket" }]));
    });
  });

  it("socket.io-client 2's socket id (its sid, which Laravel shares with everyone) lets nobody else close or take its session", async () => {
    const channel = uniqueChannel("shared-id");
    for (const transports of [["polling"], ["polling", "websocket"]]) {
      const echo = await echoConnected(makeEcho(2, { transports }, worker.url));
      const received = collect();
      echo.channel(channel).listen(".Tick", received.push);
      const disconnects = collect();
      socketOf(echo).on("disconnect", disconnects.push);
      if (transports.length === 2) await until(() => expect(socketOf(echo).io.engine.transport.name).toBe("websocket"));
      const sid = echo.socketId()!;

      const url = engineUrl(`EIO=3&transport=polling&sid=${sid}`);
      expect((await fetchFromStranger(url, { method: "POST", body: "1:1" })).status).toBe(400);
      expect((await fetchFromStranger(url)).status).toBe(400);
      expect(await rawWebSocket(`EIO=3&transport=websocket&sid=${sid}`, STRANGER).refused).toBe(400);

      await until(async () => {
        await publish(channel, { transports });
        expect(received.items).toContainEqual({ transports });
      });
      expect(disconnects.items).toEqual([]);
      expect(echo.socketId()).toBe(sid);
      echo.disconnect();
    }
  });
});

describe("MAX_CLIENTS", () => {
  it(`${MAX_CLIENTS * 2} handshakes from one address that never poll leave room for real clients`, async () => {
    for (let i = 0; i < MAX_CLIENTS * 2; i++) {
      const response = await fetchFromStranger(engineUrl(`EIO=${i % 2 ? 3 : 4}&transport=polling`));
      expect(response.status).toBe(200);
    }
    const channel = uniqueChannel("room-left");
    const clients = [
      await echoConnected(makeEcho(4, { transports: ["polling", "websocket"] }, worker.url)),
      await echoConnected(makeEcho(2, { transports: ["polling"] }, worker.url)),
    ];
    const received = clients.map((client) => {
      const items = collect();
      client.channel(channel).listen(".Tick", items.push);
      return items;
    });
    await until(async () => {
      await publish(channel, { n: 1 });
      for (const items of received) expect(items.items.length).toBeGreaterThan(0);
    });
  });

  it("an upgrade stays in the app its session was opened in, whatever its ?appId= says", async () => {
    const client = await pollingClient();
    const ws = await upgrade(client.sid, `&appId=${OTHER_APP.appId}`);
    ws.ws.send("40");
    await until(() => expect(ws.frames.some((frame) => frame.startsWith("40{"))).toBe(true));
    const channel = uniqueChannel("app-bound");
    ws.ws.send(`42${JSON.stringify(["subscribe", { channel, auth: {} }])}`);
    const tick = (data: unknown) => recoverableFrame(["Tick", channel, data]);
    await until(async () => {
      await publish(channel, { app: "other" }, OTHER_APP);
      await publish(channel, { app: "own" });
      expect(ws.frames).toContainEqual(tick({ app: "own" }));
    });
    expect(ws.frames).not.toContainEqual(tick({ app: "other" }));
  });
});

describe("bounded buffers", () => {
  it("a polling client that keeps its session alive but never fetches is disconnected once its outbox is full", async () => {
    const client = await pollingClient();
    await client.connectNamespace();
    const channel = uniqueChannel("unfetched");
    await client.subscribe(channel);
    await until(async () => {
      await publish(channel, { ready: true });
      expect(events(await client.poll()).length).toBeGreaterThan(0);
    });
    // From now on it only answers pings (a pong is a POST), never GETs.
    const pad = "x".repeat(1000);
    let status = 200;
    for (let n = 0; status === 200 && n < 200; n++) {
      await publish(channel, { n, pad });
      status = (await client.post("3")).status;
    }
    expect(status).toBe(400);
    expect(worker.output()).toMatch(new RegExp(`"event":"polling_outbox_full","sid":"${client.sid.replace(".", "\\.")}"`));
  });

  it("a WebSocket that opens with a sid and never probes is closed after the upgrade timeout; polling carries on", async () => {
    const client = await pollingClient();
    await client.connectNamespace();
    const channel = uniqueChannel("never-probes");
    await client.subscribe(channel);
    const background = client.keepPolling();
    const idle = rawWebSocket(`EIO=4&transport=websocket&sid=${client.sid}`);
    await idle.opened;
    expect(await idle.closed).toMatchObject({ code: 1000, reason: expect.stringMatching(/^upgrade timeout/) });
    await until(async () => {
      await publish(channel, { still: "polling" });
      expect(events(background.packets)).toContainEqual(recoverableEvent(["Tick", channel, { still: "polling" }]));
    });
    await background.stop();
  });

  it("a WebSocket that probes but never sends 5 is closed after the upgrade timeout; polling carries on", async () => {
    const client = await pollingClient();
    await client.connectNamespace();
    const channel = uniqueChannel("never-upgrades");
    await client.subscribe(channel);
    const pending = client.poll();
    const halfway = rawWebSocket(`EIO=4&transport=websocket&sid=${client.sid}`);
    await halfway.opened;
    halfway.ws.send("2probe");
    await until(() => expect(halfway.frames).toContain("3probe"));
    expect(await pending).toEqual([]); // released with a noop, as for a real upgrade
    expect(await halfway.closed).toMatchObject({ code: 1000, reason: expect.stringMatching(/^upgrade timeout/) });
    await until(async () => {
      await publish(channel, { still: "polling" });
      expect(events(await client.poll())).toContainEqual(recoverableEvent(["Tick", channel, { still: "polling" }]));
    });
  });

  it("a chunked polling body over MAX_PAYLOAD gets 413 and ends that session", async () => {
    const client = await pollingClient();
    const chunk = new TextEncoder().encode("4" + "x".repeat(16_383));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > Number(TEST_VARS.MAX_PAYLOAD) * 2) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const response = await fetch(client.url, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(response.status).toBe(413);
    expect((await fetch(client.url)).status).toBe(400);
  });
});

/** An HTTP proxy that forwards polling at once and holds WebSocket upgrades until told: a network where WebSockets are slow. */
async function slowWebSocketProxy(target: string) {
  const { hostname, port } = new URL(target);
  const held: (() => void)[] = [];
  let holding = true;
  const open = new Set<Socket>();
  const server = createServer((req, res) => {
    const upstream = httpRequest({ host: hostname, port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connection", (socket) => {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  });
  server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
    const forward = () => {
      const upstream = connect(Number(port), hostname, () => {
        let head_ = `${req.method} ${req.url} HTTP/1.1\r\n`;
        for (let i = 0; i < req.rawHeaders.length; i += 2) head_ += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
        upstream.write(head_ + "\r\n");
        upstream.write(head);
        socket.pipe(upstream).pipe(socket);
      });
      open.add(upstream);
      upstream.on("error", () => socket.destroy());
      socket.on("error", () => upstream.destroy());
    };
    if (holding) held.push(forward);
    else forward();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const proxy = {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    releaseUpgrades() {
      holding = false;
      for (const forward of held.splice(0)) forward();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
  cleanups.push(proxy.close);
  return proxy;
}

describe("an upgrade after the session started over polling", () => {
  type Member = { id: number; name: string };
  function join(echo: EchoClient, room: string) {
    const here = collect<Member[]>();
    const joining = collect<Member>();
    const leaving = collect<Member>();
    const whispers = collect();
    echo
      .join(room.slice("presence-".length))
      .here(here.push)
      .joining(joining.push)
      .leaving(leaving.push)
      .listenForWhisper("typing", whispers.push);
    return { here: here.items, joining: joining.items, leaving: leaving.items, whispers: whispers.items };
  }

  it.each(CLIENT_VERSIONS)(
    "socket.io-client %i moves to the WebSocket with its channels, presence and whisper rights",
    async (version) => {
      const proxy = await slowWebSocketProxy(worker.url);
      const channel = uniqueChannel("late-upgrade");
      const room = uniqueChannel("presence-late-upgrade");
      const observer = await echoConnected(makeEcho(4, asUser(3), worker.url));
      const o = join(observer, room);
      await until(() => expect(o.here).toEqual([[{ id: 3, name: "Nuno" }]]));

      const late = await echoConnected(makeEcho(version, { ...asUser(1), transports: ["polling", "websocket"] }, proxy.url));
      const received = collect();
      late.channel(channel).listen(".Tick", received.push);
      const l = join(late, room);
      await until(() => expect(l.here).toHaveLength(1));
      await until(() => expect(o.joining).toEqual([{ id: 1, name: "Taylor" }]));
      await until(async () => {
        await publish(channel, { over: "polling" });
        expect(received.items).toContainEqual({ over: "polling" });
      });
      expect(socketOf(late).io.engine.transport.name).toBe("polling");

      proxy.releaseUpgrades();
      await until(() => expect(socketOf(late).io.engine.transport.name).toBe("websocket"));
      await until(async () => {
        await publish(channel, { over: "websocket" });
        expect(received.items).toContainEqual({ over: "websocket" });
      });
      await until(() => {
        (late.join(room.slice("presence-".length)) as ReturnType<EchoClient["private"]>).whisper("typing", { from: "late" });
        expect(o.whispers).toContainEqual({ from: "late" });
      });
      // Presence never noticed the move: no leaving, one join, one `here`, the same members.
      await sleep(Number(TEST_VARS.PRESENCE_LEAVE_GRACE) * 3);
      expect(o.leaving).toEqual([]);
      expect(o.joining).toEqual([{ id: 1, name: "Taylor" }]);
      expect(l.here).toHaveLength(1);
      const users = await fetch(`${worker.url}/apps/${TEST_APP.appId}/channels/${room}/users?auth_key=${TEST_APP.key}`);
      expect(((await users.json()) as { users: { id: number }[] }).users.map((u) => u.id).sort()).toEqual([1, 3]);
    },
  );

  it("a raw client gets every message exactly once and in order while its running session moves to the WebSocket", async () => {
    const client = await pollingClient();
    await client.connectNamespace();
    const channel = uniqueChannel("handover-order");
    await client.subscribe(channel);
    await until(async () => {
      await publish(channel, { n: -1 });
      expect(events(await client.poll()).length).toBeGreaterThan(0);
    });

    const total = 150;
    const got: number[] = [];
    const take = (list: unknown[][]) => {
      for (const [, , data] of list) if ((data as { n: number }).n >= 0) got.push((data as { n: number }).n);
    };
    let polling = true;
    const pollingLoop = (async () => {
      while (polling) take(events(await client.poll()));
    })();
    let published = 0;
    const publisher = (async () => {
      for (; published < total; published++) expect((await publish(channel, { n: published })).status).toBe(200);
    })();

    await until(() => expect(published).toBeGreaterThan(total / 3));
    const ws = rawWebSocket(`EIO=4&transport=websocket&sid=${client.sid}`);
    await ws.opened;
    ws.ws.send("2probe");
    await until(() => expect(ws.frames).toContain("3probe"));
    // Like engine.io-client: stop polling (the pending poll is released with a noop), then switch.
    polling = false;
    await pollingLoop;
    ws.ws.send("5");
    await publisher;
    const fromWebSocket = () =>
      ws.frames.filter((f) => f.startsWith("42")).map((f) => JSON.parse(f.slice(2)) as [string, string, { n: number }]);
    await until(() => expect(got.length + fromWebSocket().filter(([, , d]) => d.n >= 0).length).toBeGreaterThanOrEqual(total));
    take(fromWebSocket());
    expect(got).toEqual([...Array(total).keys()]);
  });
});
