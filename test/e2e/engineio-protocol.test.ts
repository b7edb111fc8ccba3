/**
 * Issue 9 item 12: the Engine.IO protocol as socket.io's own protocol test suite
 * checks it (handshake, heartbeat, close, upgrade), for Engine.IO 3 and 4, from a
 * raw HTTP and WebSocket client. One deliberate difference: a request without `EIO`
 * is an Engine.IO 3 client, as laravel-echo-server (engine.io 3) took it.
 */
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { CONNECT_WITH_PID, until, workerUrl } from "../support/clients.ts";
import { TEST_VARS } from "../support/stack.ts";

const PING_INTERVAL = Number(TEST_VARS.PING_INTERVAL);
const PING_TIMEOUT = Number(TEST_VARS.PING_TIMEOUT);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Eio = 3 | 4;

/** One packet as an Engine.IO 3 or 4 polling body carries it alone: `<length>:<packet>` or the packet itself. */
const single = (eio: Eio, packet: string) => (eio === 3 ? `${packet.length}:${packet}` : packet);

const sockets: WebSocket[] = [];
afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate();
});

const url = (query: string) => `${workerUrl()}/socket.io/?${query}`;

async function openPolling(eio: Eio): Promise<string> {
  const body = await (await fetch(url(`EIO=${eio}&transport=polling`))).text();
  return JSON.parse(body.slice(body.indexOf("{"))).sid;
}

const poll = (eio: Eio, sid: string) => fetch(url(`EIO=${eio}&transport=polling&sid=${sid}`));
const push = (eio: Eio, sid: string, body: string) => fetch(url(`EIO=${eio}&transport=polling&sid=${sid}`), { method: "POST", body });

/** A raw WebSocket that keeps every event, so a test can await them in order. */
function rawWebSocket(query: string) {
  const ws = new WebSocket(url(query).replace(/^http/, "ws"), { perMessageDeflate: false });
  sockets.push(ws);
  const messages: string[] = [];
  const waiting: ((message: string) => void)[] = [];
  let opened = false;
  ws.on("open", () => (opened = true));
  ws.on("error", () => {}); // a refused handshake surfaces as the close below
  ws.on("message", (data) => {
    const text = data.toString();
    const next = waiting.shift();
    if (next) next(text);
    else messages.push(text);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  return {
    ws,
    closed,
    opened: () => opened,
    open: () => new Promise<void>((resolve, reject) => (opened ? resolve() : (ws.once("open", () => resolve()), ws.once("close", () => reject(new Error("closed before open")))))),
    next: () => new Promise<string>((resolve) => (messages.length > 0 ? resolve(messages.shift()!) : waiting.push(resolve))),
  };
}

describe.each([3, 4] as const)("Engine.IO %i", (eio) => {
  describe("handshake over polling", () => {
    it("opens a session: 200 and an open packet with the sid, websocket upgrade and heartbeat settings", async () => {
      const response = await fetch(url(`EIO=${eio}&transport=polling`));
      expect(response.status).toBe(200);
      const body = await response.text();
      const open = body.slice(body.indexOf("0{") + 1);
      expect(body).toBe(single(eio, "0" + open));
      const handshake = JSON.parse(open);
      expect(Object.keys(handshake).sort()).toEqual(
        eio === 4 ? ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"] : ["pingInterval", "pingTimeout", "sid", "upgrades"],
      );
      expect(handshake).toMatchObject({ sid: expect.any(String), upgrades: ["websocket"], pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT });
      if (eio === 4) expect(handshake.maxPayload).toBe(Number(TEST_VARS.MAX_PAYLOAD));
    });

    it("refuses an invalid EIO, a missing or unknown transport, and POST or PUT handshakes with 400", async () => {
      for (const query of ["EIO=abc&transport=polling", `EIO=${eio}`, `EIO=${eio}&transport=abc`]) {
        expect((await fetch(url(query))).status, query).toBe(400);
      }
      for (const method of ["POST", "PUT"]) {
        expect((await fetch(url(`EIO=${eio}&transport=polling`), { method })).status, method).toBe(400);
      }
    });
  });

  describe("handshake over WebSocket", () => {
    it("opens a session: an open packet without upgrades", async () => {
      const client = rawWebSocket(`EIO=${eio}&transport=websocket`);
      const handshake = JSON.parse((await client.next()).slice(1));
      expect(handshake).toMatchObject({ sid: expect.any(String), upgrades: [], pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT });
      expect("maxPayload" in handshake).toBe(eio === 4);
    });

    it("refuses a WebSocket with an invalid EIO or transport", async () => {
      for (const query of ["EIO=abc&transport=websocket", `EIO=${eio}`, `EIO=${eio}&transport=abc`]) {
        const client = rawWebSocket(query);
        await client.closed;
        expect(client.opened(), query).toBe(false);
      }
    });
  });

  describe("heartbeat", () => {
    it("over polling: pings answered, three times", async () => {
      const sid = await openPolling(eio);
      for (let i = 0; i < 3; i++) {
        if (eio === 4) {
          // The server pings; the client pongs.
          const ping = await poll(eio, sid);
          expect(ping.status).toBe(200);
          expect(await ping.text()).toBe("2");
          expect((await push(eio, sid, "3")).status).toBe(200);
        } else {
          // The client pings; the server pongs (its Socket.IO `40` may come first, once the session starts).
          expect(await (await push(eio, sid, single(3, "2"))).text()).toBe("ok");
          await until(async () => expect(await (await poll(eio, sid)).text()).toMatch(/1:3$/));
        }
      }
    });

    it("over polling: the session ends when the client stops answering", async () => {
      const sid = await openPolling(eio);
      await sleep(PING_INTERVAL + PING_TIMEOUT);
      await until(async () => expect((await poll(eio, sid)).status).toBe(400));
    });

    it("over WebSocket: pings answered, three times", async () => {
      const client = rawWebSocket(`EIO=${eio}&transport=websocket`);
      await client.next(); // open packet
      if (eio === 3) expect(await client.next()).toBe("40"); // Socket.IO revision 4 connects unasked
      for (let i = 0; i < 3; i++) {
        if (eio === 4) {
          expect(await client.next()).toBe("2");
          client.ws.send("3");
          // The connection host absorbs the pong with an auto-response noop, which clients ignore.
          expect(await client.next()).toBe("6");
        } else {
          client.ws.send("2");
          expect(await client.next()).toBe("3");
        }
      }
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
    });

    it("over WebSocket: the connection closes when the client stops answering", async () => {
      const client = rawWebSocket(`EIO=${eio}&transport=websocket`);
      await client.open();
      await client.closed;
    });
  });

  describe("close", () => {
    it("over polling: the client's close packet answers the pending poll with a noop, then the sid is gone", async () => {
      const sid = await openPolling(eio);
      // First what the server sends unasked (Engine.IO 4: a ping; 3: Socket.IO's `40` once the session
      // starts), so that the next poll stays pending.
      expect(await (await poll(eio, sid)).text()).toBe(eio === 4 ? "2" : "2:40");
      const pending = poll(eio, sid);
      await sleep(100);
      expect((await push(eio, sid, single(eio, "1"))).status).toBe(200);
      const answer = await pending;
      expect(answer.status).toBe(200);
      expect(await answer.text()).toBe(single(eio, "6"));
      const after = await poll(eio, sid);
      expect(after.status).toBe(400);
      expect(await after.json()).toMatchObject({ code: 1, message: "Session ID unknown" });
    });

    it("over WebSocket: the client's close packet closes the connection", async () => {
      const client = rawWebSocket(`EIO=${eio}&transport=websocket`);
      await client.next();
      client.ws.send("1");
      await client.closed;
    });
  });

  describe("upgrade", () => {
    async function upgraded() {
      const sid = await openPolling(eio);
      const client = rawWebSocket(`EIO=${eio}&transport=websocket&sid=${sid}`);
      await client.open();
      client.ws.send("2probe");
      expect(await client.next()).toBe("3probe");
      client.ws.send("5");
      return { sid, client };
    }

    it("upgrades from polling to WebSocket: 2probe, 3probe, 5, and the session carries on over the WebSocket", async () => {
      const { client } = await upgraded();
      if (eio === 3) {
        expect(await client.next()).toBe("40");
        client.ws.send("2");
        expect(await client.next()).toBe("3");
      } else {
        client.ws.send("40");
        expect(await client.next()).toMatch(CONNECT_WITH_PID);
      }
    });

    it.runIf(eio === 3)("answers over the WebSocket a ping the client sent over polling while it upgraded", async () => {
      const sid = await openPolling(eio);
      const client = rawWebSocket(`EIO=${eio}&transport=websocket&sid=${sid}`);
      await client.open();
      client.ws.send("2probe");
      expect(await client.next()).toBe("3probe");
      // socket.io-client 2 keeps pinging over polling until it sends `5`; without this
      // pong it gives up on the connection a ping timeout later.
      expect((await push(eio, sid, single(eio, "2"))).status).toBe(200);
      client.ws.send("5");
      expect([await client.next(), await client.next()].sort()).toEqual(["3", "40"]);
    });

    it("refuses polling with the sid after the upgrade", async () => {
      const { sid, client } = await upgraded();
      if (eio === 3) await client.next(); // the upgrade is complete once the session speaks on the WebSocket
      else {
        client.ws.send("40");
        await client.next();
      }
      const response = await poll(eio, sid);
      expect(response.status).toBe(400);
    });

    it("accepts and then closes a second WebSocket with the sid of an upgraded session", async () => {
      const { sid, client } = await upgraded();
      if (eio === 3) await client.next();
      else {
        client.ws.send("40");
        await client.next();
      }
      const second = rawWebSocket(`EIO=${eio}&transport=websocket&sid=${sid}`);
      await second.open();
      await second.closed;
      // The first connection is untouched.
      expect(client.ws.readyState).toBe(WebSocket.OPEN);
    });
  });
});

it("a request without EIO is an Engine.IO 3 client (laravel-echo-server's default), not a 400", async () => {
  const response = await fetch(url("transport=polling"));
  expect(response.status).toBe(200);
  expect(await response.text()).toMatch(/^\d+:0\{/);
});
