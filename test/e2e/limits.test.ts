/**
 * Issue 5: MAX_CLIENTS caps an app's connections across the edge. Runs its own
 * worker with MAX_CLIENTS=2, so the count is this file's alone.
 */
import { afterAll, afterEach, beforeAll, expect, inject, it } from "vitest";
import {
  closeAll,
  collect,
  connectSocket,
  connected,
  echoConnected,
  makeEcho,
  uniqueChannel,
  until,
  type AnySocket,
  type ClientVersion,
  type EchoClient,
} from "../support/clients.ts";
import { TEST_APP, TEST_VARS } from "../support/stack.ts";
import { startWorker, type RunningWorker } from "../support/worker.ts";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker({ ...TEST_VARS, MAX_CLIENTS: "2", AUTH_HOST: inject("authUrl") });
});
afterAll(() => worker?.stop());
afterEach(closeAll);

/** Resolves with the connect_error of a client that is not let in (no retries, so it stays out). */
function refusal(version: ClientVersion, transport: "polling" | "websocket"): Promise<Error & { description?: unknown }> {
  const socket = connectSocket(version, { reconnection: false, transports: [transport] }, worker.url);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => reject(new Error(`a ${transport} client of socket.io-client ${version} got in`)));
    socket.once("connect_error", resolve);
  });
}

/** An Echo client on polling that upgrades to WebSocket, like a browser's default. */
async function upgradedEcho(version: ClientVersion): Promise<EchoClient> {
  const echo = await echoConnected(makeEcho(version, { transports: ["polling", "websocket"] }, worker.url));
  const socket = echo.connector.socket as unknown as AnySocket;
  await until(() => expect(socket.io.engine.transport.name).toBe("websocket"));
  return echo;
}

const publish = (channel: string, data: unknown) =>
  fetch(`${worker.url}/apps/${TEST_APP.appId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TEST_APP.key}` },
    body: JSON.stringify({ channel, name: "Tick", data }),
  });

it("refuses the third client with 403 while the first two keep receiving, and lets a new one in when one leaves", async () => {
  // Upgrading from polling to WebSocket must not count a client twice.
  const first = await upgradedEcho(4);
  const second = await upgradedEcho(2);

  const handshake = await fetch(`${worker.url}/socket.io/?EIO=4&transport=polling`);
  expect(handshake.status).toBe(403);
  expect(await handshake.json()).toEqual({ code: 4, message: "Forbidden", detail: "too many clients: MAX_CLIENTS (2) reached" });
  expect((await refusal(4, "polling")).description).toBe(403);
  await refusal(4, "websocket");
  await refusal(2, "websocket");
  const status = await fetch(`${worker.url}/apps/${TEST_APP.appId}/status?auth_key=${TEST_APP.key}`);
  expect(await status.json()).toMatchObject({ subscription_count: 2 });

  const channel = uniqueChannel("limits");
  const received = [collect(), collect()];
  first.channel(channel).listen(".Tick", received[0]!.push);
  second.channel(channel).listen(".Tick", received[1]!.push);
  await until(async () => {
    expect((await publish(channel, { n: 1 })).status).toBe(200);
    for (const client of received) expect(client.items.length).toBeGreaterThan(0);
  });
  expect((first.connector.socket as unknown as AnySocket).connected).toBe(true);
  expect((second.connector.socket as unknown as AnySocket).connected).toBe(true);

  // The slot comes back once the server has seen the second client go.
  second.disconnect();
  const newcomer = await until(async () => {
    const socket = connectSocket(4, { reconnection: false, transports: ["websocket"] }, worker.url);
    try {
      return await connected(socket);
    } catch (error) {
      socket.close();
      throw error;
    }
  });
  expect(newcomer.connected).toBe(true);
  await refusal(4, "websocket");
});
