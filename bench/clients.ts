/**
 * The load generator's clients. The mass are raw `ws` connections speaking
 * Engine.IO 3 / Socket.IO revision 4 framing by hand, because hundreds of
 * socket.io-client instances would make the generator the bottleneck; a few real
 * socket.io-client 2 and 4 instances run beside them to prove compatibility.
 * Every client subscribes to one channel the way laravel-echo does.
 */
import WebSocket from "ws";
import ioV2 from "socket.io-client-v2";
import { io as ioV4 } from "socket.io-client";
import { BENCH_EVENT, type Receiver } from "./ledger.ts";

export type ClientKind = "raw ws" | "socket.io-client 2" | "socket.io-client 4";

export interface BenchClient {
  readonly kind: ClientKind;
  readonly receiver: Receiver;
  /** The WebSocket extensions the server accepted ("" when none). */
  readonly extensions: string;
  subscribe(): void;
  close(): void;
}

export interface ConnectOptions {
  /** Offer permessage-deflate (browsers always do; `ws` does unless told not to). */
  deflate: boolean;
  timeoutMs: number;
}

function subscribeFrame(channel: string): string {
  return `42${JSON.stringify(["subscribe", { channel, auth: { headers: {} } }])}`;
}

const SEQ_KEY = Buffer.from('"seq":');
const SENT_AT_KEY = Buffer.from('"sentAt":');
const DIGIT_4 = 0x34;
const DIGIT_2 = 0x32;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const DOT = 0x2e;

/** The number written at `start` of an ASCII buffer (digits and one dot). */
function numberAt(buffer: Buffer, start: number): number {
  let end = start;
  while (end < buffer.length) {
    const c = buffer[end]!;
    if ((c < DIGIT_0 || c > DIGIT_9) && c !== DOT) break;
    end++;
  }
  return Number(buffer.toString("latin1", start, end));
}

/** Connects an Engine.IO 3 WebSocket (no polling first, as a client with `transports: ["websocket"]`). */
export function connectRaw(baseUrl: string, receiver: Receiver, options: ConnectOptions): Promise<BenchClient> {
  const url = `${baseUrl.replace(/^http/, "ws")}/socket.io/?EIO=3&transport=websocket`;
  // The bytes every bench event for this channel starts with; a frame that does
  // not is parsed as JSON instead, so a server that formats differently is still read correctly.
  const eventPrefix = Buffer.from(`42[${JSON.stringify(BENCH_EVENT)},${JSON.stringify(receiver.channel)},`);
  return new Promise((resolve, reject) => {
    // Frames are read as bytes; UTF-8 validation would only cost the generator CPU.
    const ws = new WebSocket(url, { perMessageDeflate: options.deflate, handshakeTimeout: options.timeoutMs, skipUTF8Validation: true });
    let pingTimer: NodeJS.Timeout | undefined;
    let connected = false;
    let closing = false;
    const timeout = setTimeout(() => fail(new Error("no Socket.IO CONNECT in time")), options.timeoutMs);
    const fail = (error: Error) => {
      clearTimeout(timeout);
      clearInterval(pingTimer);
      ws.terminate();
      reject(error);
    };
    const client: BenchClient = {
      kind: "raw ws",
      receiver,
      get extensions() {
        return ws.extensions;
      },
      subscribe: () => ws.send(subscribeFrame(receiver.channel)),
      close() {
        closing = true;
        clearInterval(pingTimer);
        ws.terminate();
      },
    };
    ws.on("error", (error) => (connected ? undefined : fail(error)));
    ws.on("close", () => {
      clearInterval(pingTimer);
      if (!connected) fail(new Error("closed before CONNECT"));
      else if (!closing) receiver.ledger.unexpectedCloses++;
    });
    ws.on("message", (data: Buffer) => {
      if (data[0] === DIGIT_4 && data[1] === DIGIT_2) {
        if (data.length > eventPrefix.length && data.compare(eventPrefix, 0, eventPrefix.length, 0, eventPrefix.length) === 0) {
          const seqAt = data.indexOf(SEQ_KEY, eventPrefix.length);
          if (seqAt < 0) return receiver.probe();
          const sentAtAt = data.indexOf(SENT_AT_KEY, seqAt);
          return receiver.deliver(numberAt(data, seqAt + SEQ_KEY.length), numberAt(data, sentAtAt + SENT_AT_KEY.length));
        }
        const [event, channel, payload] = JSON.parse(data.toString("utf8", 2)) as [string, unknown, unknown];
        return receiver.event(event, channel, payload);
      }
      const text = data.toString();
      if (text.startsWith("0{")) {
        // Engine.IO 3: the client pings, and the server drops it after pingInterval + pingTimeout of silence.
        const { pingInterval } = JSON.parse(text.slice(1)) as { pingInterval: number };
        pingTimer = setInterval(() => ws.send("2"), pingInterval);
      } else if (text === "40") {
        connected = true;
        clearTimeout(timeout);
        resolve(client);
      } else if (text.startsWith("44")) {
        fail(new Error(`Socket.IO error: ${text}`));
      }
    });
  });
}

/** Connects a real socket.io-client (2 speaks Engine.IO 3, 4 speaks Engine.IO 4). */
export function connectSocketIo(
  kind: "socket.io-client 2" | "socket.io-client 4",
  baseUrl: string,
  receiver: Receiver,
  options: ConnectOptions,
): Promise<BenchClient> {
  const socketOptions = {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
    timeout: options.timeoutMs,
    // Both default to offering deflate (1 KiB threshold on their own frames). False is documented
    // and works as "do not offer", though socket.io-client 4's types only allow the object.
    perMessageDeflate: (options.deflate ? { threshold: 1024 } : false) as { threshold: number },
  };
  const socket =
    kind === "socket.io-client 2"
      ? // It would pick Node 22's global WebSocket, which always offers deflate; `ws` obeys the option.
        ioV2(baseUrl, { ...socketOptions, forceNode: true })
      : ioV4(baseUrl, socketOptions);
  return new Promise((resolve, reject) => {
    let closing = false;
    const timeout = setTimeout(() => {
      socket.close();
      reject(new Error(`${kind}: no connect in time`));
    }, options.timeoutMs);
    socket.once("connect_error", (error: Error) => {
      clearTimeout(timeout);
      socket.close();
      reject(error);
    });
    socket.on(BENCH_EVENT, (channel: unknown, data: unknown) => receiver.event(BENCH_EVENT, channel, data));
    socket.on("disconnect", () => {
      if (!closing) receiver.ledger.unexpectedCloses++;
    });
    socket.once("connect", () => {
      clearTimeout(timeout);
      resolve({
        kind,
        receiver,
        get extensions() {
          // The engine's current transport holds the `ws` socket; its internals are the only place the answer lives.
          const transport = (socket.io.engine as unknown as { transport?: { ws?: { extensions?: string } } }).transport;
          return transport?.ws?.extensions ?? "";
        },
        subscribe: () => socket.emit("subscribe", { channel: receiver.channel, auth: { headers: {} } }),
        close() {
          closing = true;
          socket.close();
        },
      });
    });
  });
}
