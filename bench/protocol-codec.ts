// Throughput of our Engine.IO/Socket.IO codec against the official engine.io-parser@5 and
// socket.io-parser@4 (EIO4 / revision 5: the only versions those speak), to back the decision
// recorded in bench/PROTOCOL-CODEC.md. The official parsers are not project dependencies: they
// are resolved from the working directory, so run this from a scratch directory holding them:
//   mkdir -p /tmp/codec-bench && cd /tmp/codec-bench && echo '{"private":true}' > package.json
//   npm install --no-save engine.io-parser@5 socket.io-parser@4
//   /work/main/node_modules/.bin/node /work/main/bench/protocol-codec.ts
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { decodeFrame, decodePayload, encodeFrame, encodePayload, type EnginePacket } from "../worker/protocol/engineio.ts";
import { SocketPacketType, decodeSocketPacket, encodeSocketPacket, eventPacket } from "../worker/protocol/socketio.ts";

interface OfficialEngineParser {
  encodePacket(packet: EnginePacket, supportsBinary: boolean, callback: (encoded: string | Uint8Array) => void): void;
  decodePacket(encoded: string): EnginePacket;
  encodePayload(packets: EnginePacket[], callback: (encoded: string) => void): void;
  decodePayload(encoded: string): EnginePacket[];
}
interface OfficialSocketParser {
  Encoder: new () => { encode(packet: unknown): (string | Uint8Array)[] };
  Decoder: new () => { on(event: "decoded", listener: (packet: unknown) => void): void; add(chunk: string): void };
}

const requireFromCwd = createRequire(join(process.cwd(), "package.json"));
const eio = requireFromCwd("engine.io-parser") as OfficialEngineParser;
const sio = requireFromCwd("socket.io-parser") as OfficialSocketParser;
/** Version of the copy actually resolved (their exports maps hide package.json from require). */
function versionOf(name: string): string {
  const entry = requireFromCwd.resolve(name);
  const root = entry.slice(0, entry.lastIndexOf(`node_modules/${name}/`) + `node_modules/${name}/`.length);
  return (JSON.parse(readFileSync(root + "package.json", "utf8")) as { version: string }).version;
}

// A typical Laravel broadcast: the fan-out path encodes one of these per publish.
const EVENT = "App\\Events\\OrderShipped";
const CHANNEL = "private-orders.42";
const DATA = {
  order: { id: 42, status: "shipped", total: 129.5, items: [{ sku: "A-1", qty: 2 }, { sku: "B-7", qty: 1 }] },
  note: "Zahlung erhalten (€)",
  socket: null,
};
const EVENT_TEXT = encodeSocketPacket({ type: SocketPacketType.EVENT, nsp: "/", data: [EVENT, CHANNEL, DATA] });
const EVENT_FRAME = eventPacket(EVENT, CHANNEL, DATA);
const POLL_PACKETS: EnginePacket[] = [
  { type: "message", data: EVENT_TEXT },
  { type: "message", data: '2["client event",{"channel":"private-chat","event":"client-typing","data":{"id":1}}]' },
  { type: "ping" },
];
const POLL_BODY = encodePayload(POLL_PACKETS, 4);
const BINARY: EnginePacket[] = [{ type: "message", data: Uint8Array.from({ length: 1024 }, (_, i) => (i * 31) & 0xff) }];
const BINARY_BODY = encodePayload(BINARY, 4);

const encodeOfficialFrame = (packet: EnginePacket) => {
  let frame: string | Uint8Array = "";
  eio.encodePacket(packet, true, (encoded) => (frame = encoded));
  return frame;
};
const encodeOfficialPayload = (packets: EnginePacket[]) => {
  let body = "";
  eio.encodePayload(packets, (encoded) => (body = encoded));
  return body;
};
const socketEncoder = new sio.Encoder();
const socketDecoder = new sio.Decoder();
let lastDecoded: unknown;
socketDecoder.on("decoded", (packet) => (lastDecoded = packet));
const decodeOfficialSocket = (text: string) => {
  socketDecoder.add(text);
  return lastDecoded;
};
const officialEventFrame = () =>
  encodeOfficialFrame({
    type: "message",
    data: socketEncoder.encode({ type: SocketPacketType.EVENT, nsp: "/", data: [EVENT, CHANNEL, DATA] })[0] as string,
  });

interface Case {
  name: string;
  ours: () => unknown;
  official: () => unknown;
}
const cases: Case[] = [
  { name: "fan-out frame: eventPacket vs Encoder+encodePacket", ours: () => eventPacket(EVENT, CHANNEL, DATA), official: officialEventFrame },
  { name: "encode text frame", ours: () => encodeFrame(POLL_PACKETS[0]!, 4), official: () => encodeOfficialFrame(POLL_PACKETS[0]!) },
  { name: "decode text frame", ours: () => decodeFrame(EVENT_FRAME, 4), official: () => eio.decodePacket(EVENT_FRAME) },
  { name: "encode socket EVENT", ours: () => encodeSocketPacket({ type: 2, nsp: "/", data: [EVENT, CHANNEL, DATA] }), official: () => socketEncoder.encode({ type: 2, nsp: "/", data: [EVENT, CHANNEL, DATA] })[0] },
  { name: "decode socket EVENT", ours: () => decodeSocketPacket(EVENT_TEXT), official: () => decodeOfficialSocket(EVENT_TEXT) },
  { name: "encode poll payload (3 packets)", ours: () => encodePayload(POLL_PACKETS, 4), official: () => encodeOfficialPayload(POLL_PACKETS) },
  { name: "decode poll payload (3 packets)", ours: () => decodePayload(POLL_BODY, 4), official: () => eio.decodePayload(POLL_BODY) },
  { name: "encode 1 KiB binary payload (base64)", ours: () => encodePayload(BINARY, 4), official: () => encodeOfficialPayload(BINARY) },
  { name: "decode 1 KiB binary payload (base64)", ours: () => decodePayload(BINARY_BODY, 4), official: () => eio.decodePayload(BINARY_BODY) },
];

// Encoders must produce the same wire text on both sides, or the comparison means nothing.
for (const { name, ours, official } of cases) {
  const text = ours();
  if (typeof text === "string" && text !== official()) throw new Error(`outputs differ: ${name}`);
}

const ROUNDS = 7;
const ROUND_MS = 200;
const BATCH = 1000;
let sink: unknown;

/** Operations per second of one timed round. */
function roundRate(run: () => unknown): number {
  let operations = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < ROUND_MS) {
    for (let i = 0; i < BATCH; i++) sink = run();
    operations += BATCH;
    elapsed = performance.now() - start;
  }
  return (operations / elapsed) * 1000;
}

/** Median rates, ours and official rounds interleaved so machine noise hits both alike; round 0 warms up. */
function compare({ ours, official }: Case): [number, number] {
  const oursRates: number[] = [];
  const officialRates: number[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const oursRate = roundRate(ours);
    const officialRate = roundRate(official);
    if (round === 0) continue;
    oursRates.push(oursRate);
    officialRates.push(officialRate);
  }
  const median = (rates: number[]) => rates.sort((a, b) => a - b)[ROUNDS >> 1]!;
  return [median(oursRates), median(officialRates)];
}

const format = (rate: number) => `${(rate / 1e6).toFixed(2)} M/s`;
console.log(`node ${process.version}; engine.io-parser ${versionOf("engine.io-parser")}, socket.io-parser ${versionOf("socket.io-parser")}`);
console.log("| case (EIO4 / rev 5) | ours | official | ours / official |");
console.log("|---|---:|---:|---:|");
for (const benchCase of cases) {
  const [oursRate, officialRate] = compare(benchCase);
  console.log(`| ${benchCase.name} | ${format(oursRate)} | ${format(officialRate)} | ${(oursRate / officialRate).toFixed(2)}x |`);
}
if (sink === undefined) console.log("(unreachable: keeps the benchmarked results alive)");
