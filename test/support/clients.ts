/**
 * Real clients for end-to-end tests: socket.io-client 2 (Engine.IO 3) and 4
 * (Engine.IO 4), raw WebSockets, and laravel-echo on top of either.
 */
import Echo from "laravel-echo";
import { io as ioV4 } from "socket.io-client";
import ioV2 from "socket.io-client-v2";
import { expect, inject, vi } from "vitest";
import WebSocket from "ws";
import { publishPath, signatureHeaders } from "../../worker/publish/signature.ts";
import { BRIDGE_SECRET } from "./stack.ts";

export type ClientVersion = 2 | 4;
export const CLIENT_VERSIONS: ClientVersion[] = [2, 4];

/** The part of the socket.io-client API both versions share and the tests use. */
export interface AnySocket {
  id: string | undefined;
  connected: boolean;
  io: { engine: { id?: string; transport: { name: string }; on(event: string, cb: (...args: unknown[]) => void): void; write(data: string): void; close(): void } };
  on(event: string, cb: (...args: any[]) => void): AnySocket;
  once(event: string, cb: (...args: any[]) => void): AnySocket;
  off(event: string, cb?: (...args: any[]) => void): AnySocket;
  emit(event: string, ...args: unknown[]): AnySocket;
  close(): AnySocket;
}

export const ioFor = (version: ClientVersion) =>
  (version === 2 ? ioV2 : ioV4) as unknown as (url: string, options?: Record<string, unknown>) => AnySocket;

export const workerUrl = () => inject("workerUrl");

const opened: { close(): unknown }[] = [];

/** Everything a test opened through these helpers is closed after it. */
export function closeAll(): void {
  for (const client of opened.splice(0)) client.close();
}

export function connectSocket(version: ClientVersion, options: Record<string, unknown> = {}, url = workerUrl()): AnySocket {
  const socket = ioFor(version)(url, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 300, ...options });
  opened.push(socket);
  return socket;
}

export async function connected(socket: AnySocket): Promise<AnySocket> {
  if (!socket.connected) {
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("connect_error", (error: Error) => reject(error));
    });
  }
  return socket;
}

export type EchoClient = Echo<"socket.io">;

export function makeEcho(version: ClientVersion, options: Record<string, unknown> = {}, url = workerUrl()): EchoClient {
  const echo = new Echo({
    broadcaster: "socket.io",
    host: url,
    client: ioFor(version),
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 300,
    ...options,
  } as ConstructorParameters<typeof Echo>[0]) as EchoClient;
  opened.push({ close: () => echo.disconnect() });
  return echo;
}

export async function echoConnected(echo: EchoClient): Promise<EchoClient> {
  await connected(echo.connector.socket as unknown as AnySocket);
  return echo;
}

/** Publishes through laravel-echo-server's HTTP API (`POST /apps/:appId/events`). */
export async function publishEvent(
  body: { channel?: string; channels?: string[]; name: string; data: unknown; socket_id?: string },
  app = inject("testApp"),
): Promise<Response> {
  return fetch(`${workerUrl()}/apps/${app.appId}/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${app.key}` },
    body: JSON.stringify(body),
  });
}

/** A raw WebSocket speaking Engine.IO directly, recording every frame it receives. */
export async function rawSocket(query: string, url = workerUrl()): Promise<{ ws: WebSocket; frames: string[]; closed: Promise<number> }> {
  const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?${query}`, { perMessageDeflate: false });
  opened.push({ close: () => ws.terminate() });
  const frames: string[] = [];
  ws.on("message", (data) => frames.push(data.toString()));
  const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return { ws, frames, closed };
}

export const until = <T>(check: () => T | Promise<T>, timeout = 10_000) => vi.waitFor(check, { timeout, interval: 25 });

/** Collects what a laravel-echo listener receives. */
export function collect<T = unknown>(): { items: T[]; push: (item: T) => void } {
  const items: T[] = [];
  return { items, push: (item: T) => void items.push(item) };
}

/** A presence member as the Laravel auth fixture describes users. */
export type PresenceUser = { id: number; name: string };

/** Joins a presence channel through laravel-echo, recording what `here`, `joining` and `leaving` receive. */
export function joinPresence(echo: EchoClient, channel: string) {
  const here = collect<PresenceUser[]>();
  const joining = collect<PresenceUser>();
  const leaving = collect<PresenceUser>();
  echo.join(channel.slice("presence-".length)).here(here.push).joining(joining.push).leaving(leaving.push);
  return { here: here.items, joining: joining.items, leaving: leaving.items };
}

let counter = 0;
/** A channel name no other test uses (files share one worker). */
export const uniqueChannel = (prefix: string) => `${prefix}.${process.pid}.${Date.now().toString(36)}.${counter++}`;

export interface LaravelPayload {
  channel: string;
  event: string;
  data: unknown;
  socket?: string | null;
}

/** Publishes a batch the way the bridge does: signed `POST /apps/:appId/publish`. */
export async function publishBatch(messages: LaravelPayload[], id = crypto.randomUUID(), appId = inject("testApp").appId): Promise<Response> {
  const body = JSON.stringify({ id, messages });
  return fetch(`${workerUrl()}/apps/${appId}/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(await signatureHeaders(BRIDGE_SECRET, { method: "POST", path: publishPath(appId), body })) },
    body,
  });
}

export interface AuthRequestSeen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** The fixture's answer; null while it has not answered. */
  response: { status: number; body: string } | null;
}

/** What the Laravel auth fixture received for a channel. */
export async function authRequestsFor(channel: string): Promise<AuthRequestSeen[]> {
  return (await fetch(`${inject("authUrl")}/__requests?channel=${encodeURIComponent(channel)}`)).json();
}

/** What the Laravel auth fixture received for every channel whose name starts with `prefix`. */
export async function authRequestsWithPrefix(prefix: string): Promise<AuthRequestSeen[]> {
  return (await fetch(`${inject("authUrl")}/__requests?prefix=${encodeURIComponent(prefix)}`)).json();
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The CONNECT reply a Socket.IO v4 client gets when its session can recover: its socket id and a pid. */
export const CONNECT_WITH_PID = /^40\{"sid":"(\d+\.\d+)","pid":"\1:\d+\.\d+"\}$/;

/** A recovery offset (worker/session/recovery.ts) that names a frame number of `channel` among the session's channels. */
const offsetPattern = (channel: string) => `(\\d+~[^|"]+\\|)*\\d+~${escapeRegExp(channel)}(\\|\\d+~[^|"]+)*`;

/** An event as a Socket.IO v4 client whose session can recover receives it: its arguments, then its offset. */
export const recoverableEvent = (args: [event: string, channel: string, data: unknown]) => [
  ...args,
  expect.stringMatching(new RegExp(`^${offsetPattern(args[1])}$`)),
];

/** The same event as the WebSocket frame that carries it. */
export const recoverableFrame = (args: [event: string, channel: string, data: unknown]) =>
  expect.stringMatching(new RegExp(`^${escapeRegExp("42" + JSON.stringify(args).slice(0, -1))},"${offsetPattern(args[1])}"\\]$`));
