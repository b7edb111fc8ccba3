/**
 * Issue 11: channel auth against a Laravel app that broadcasts with its `pusher`
 * broadcaster. Laravel then reads `socket_id` from the form next to `channel_name`
 * and answers in Pusher's format, `{"auth":"key:signature"}`, plus `channel_data` as
 * a JSON string for presence. Runs its own worker, pointed at the auth fixture's
 * pusher-mode route, with real laravel-echo on socket.io-client 2 and 4; the
 * official `pusher` SDK checks the fixture signs exactly as Laravel's would.
 */
import Pusher from "pusher";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { PUSHER_AUTH_ENDPOINT, PUSHER_CREDENTIALS } from "../fixtures/laravel-auth.ts";
import {
  CLIENT_VERSIONS,
  authRequestsFor,
  closeAll,
  collect,
  echoConnected,
  joinPresence,
  makeEcho,
  uniqueChannel,
  until,
  type ClientVersion,
  type EchoClient,
} from "../support/clients.ts";
import { TEST_APP, TEST_VARS } from "../support/stack.ts";
import { startWorker, type RunningWorker } from "../support/worker.ts";

let worker: RunningWorker;
beforeAll(async () => {
  worker = await startWorker({ ...TEST_VARS, AUTH_HOST: inject("authUrl"), AUTH_ENDPOINT: PUSHER_AUTH_ENDPOINT });
});
afterAll(() => worker?.stop());
afterEach(closeAll);

/** Laravel's own Pusher SDK instance, to compute what its auth answers must be. */
const laravelPusher = new Pusher({ ...PUSHER_CREDENTIALS, host: "127.0.0.1" });

const asUser = (id: number) => ({ auth: { headers: { Authorization: `Bearer ${id}` } } });
const echoFor = (version: ClientVersion, userId: number) => echoConnected(makeEcho(version, asUser(userId), worker.url));

function publish(channel: string, data: unknown) {
  return fetch(`${worker.url}/apps/${TEST_APP.appId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TEST_APP.key}` },
    body: JSON.stringify({ channel, name: "Paid", data }),
  });
}

/** The one auth request Laravel got for a channel, and its answer. */
async function onlyAuthRequest(channel: string) {
  const [request, ...rest] = await authRequestsFor(channel);
  expect(rest).toEqual([]);
  return { form: Object.fromEntries(new URLSearchParams(request!.body)), response: request!.response! };
}

describe.each(CLIENT_VERSIONS)("private channels, socket.io-client %i", (version) => {
  it("Laravel gets socket_id with channel_name, answers {auth}, and the client receives", async () => {
    const echo = await echoFor(version, 1);
    const channel = uniqueChannel("private-pusher.orders");
    const paid = collect();
    echo.private(channel.slice("private-".length)).listen(".Paid", paid.push);
    await until(async () => {
      await publish(channel, { ok: true });
      expect(paid.items.length).toBeGreaterThan(0);
    });
    expect(paid.items[0]).toEqual({ ok: true });

    const socketId = echo.socketId()!;
    expect(socketId).toMatch(/^\d+\.\d+$/);
    const { form, response } = await onlyAuthRequest(channel);
    expect(form).toEqual({ channel_name: channel, socket_id: socketId });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual(laravelPusher.authorizeChannel(socketId, channel));
  });
});

describe("presence channels", () => {

  it.each([
    [4, 2],
    [2, 4],
  ] as [ClientVersion, ClientVersion][])("here / joining / leaving carry user_info (clients %i and %i)", async (v1, v2) => {
    const channel = uniqueChannel("presence-pusher.room");
    const taylor = await echoFor(v1, 1);
    const t = joinPresence(taylor, channel);
    await until(() => expect(t.here).toEqual([[{ id: 1, name: "Taylor" }]]));
    const abigail = await echoFor(v2, 2);
    const a = joinPresence(abigail, channel);
    await until(() => expect(a.here).toEqual([[{ id: 1, name: "Taylor" }, { id: 2, name: "Abigail" }]]));
    await until(() => expect(t.joining).toEqual([{ id: 2, name: "Abigail" }]));
    abigail.leave(channel.slice("presence-".length));
    await until(() => expect(t.leaving).toEqual([{ id: 2, name: "Abigail" }]));

    // Laravel signed socket_id:channel:channel_data, with channel_data a JSON string and the user id a string, as Pusher does.
    const socketId = taylor.socketId()!;
    const taylorsAuth = (await authRequestsFor(channel)).find((request) => new URLSearchParams(request.body).get("socket_id") === socketId)!;
    const answer = JSON.parse(taylorsAuth.response!.body);
    expect(answer).toEqual(laravelPusher.authorizeChannel(socketId, channel, { user_id: "1", user_info: { id: 1, name: "Taylor" } }));
    expect(typeof answer.channel_data).toBe("string");
    // The HTTP API lists members as Laravel described them.
    const users = await fetch(`${worker.url}/apps/${TEST_APP.appId}/channels/${encodeURIComponent(channel)}/users?auth_key=${TEST_APP.key}`);
    expect(await users.json()).toEqual({ users: [{ id: "1", user_info: { id: 1, name: "Taylor" } }] });
  });
});

describe("the fixture answers as Laravel's PusherBroadcaster does", () => {
  async function auth(form: Record<string, string>) {
    const response = await fetch(inject("authUrl") + PUSHER_AUTH_ENDPOINT, {
      method: "POST",
      headers: { authorization: "Bearer 1", "content-type": "application/x-www-form-urlencoded", "x-requested-with": "XMLHttpRequest" },
      body: new URLSearchParams(form).toString(),
    });
    return { status: response.status, body: await response.json() };
  }

  it("refuses a missing or malformed socket id with Laravel's 500, which a worker sending none would get", async () => {
    const channel = uniqueChannel("private-pusher.refusal");
    const serverError = { status: 500, body: { message: "Server Error" } };
    expect(await auth({ channel_name: channel })).toEqual(serverError);
    for (const socketId of ["abc", "1.2.3", "12345", " 1.2", "1.2\n"]) {
      expect(await auth({ channel_name: channel, socket_id: socketId })).toEqual(serverError);
    }
    expect(await auth({ channel_name: channel, socket_id: "123.456" })).toEqual({
      status: 200,
      body: laravelPusher.authorizeChannel("123.456", channel),
    });
  });
});
