// Engine.IO packet codec for protocol versions 3 and 4: WebSocket frames, long-polling
// payloads and the EIO3 JSONP wrapping. Pure and synchronous; malformed input throws.
import { ProtocolError } from "./errors.ts";

export type EngineVersion = 3 | 4;
export type EnginePacketType = "open" | "close" | "ping" | "pong" | "message" | "upgrade" | "noop";
export interface EnginePacket {
  type: EnginePacketType;
  data?: string | Uint8Array;
}

// Index = wire type code.
const PACKET_TYPES: readonly EnginePacketType[] = ["open", "close", "ping", "pong", "message", "upgrade", "noop"];
const TYPE_CODE: Readonly<Record<EnginePacketType, number>> = {
  open: 0,
  close: 1,
  ping: 2,
  pong: 3,
  message: 4,
  upgrade: 5,
  noop: 6,
};

const CHAR_0 = 48;
const CHAR_COLON = 58;
const CHAR_B = 98;
const RECORD_SEPARATOR = "\x1e";

/** One WebSocket frame. Text packets -> string "<type digit><data>". Binary message data -> Uint8Array:
 *  EIO4 raw bytes; EIO3 a leading byte 4 (message type) followed by the bytes. */
export function encodeFrame(packet: EnginePacket, version: EngineVersion): string | Uint8Array {
  const { data } = packet;
  if (!(data instanceof Uint8Array)) return encodeTextFrame(packet, version);
  if (version === 4) {
    requireBinaryMessage(packet);
    return data;
  }
  const frame = new Uint8Array(data.length + 1);
  frame[0] = TYPE_CODE[packet.type];
  frame.set(data, 1);
  return frame;
}

/** Inverse of encodeFrame; accepts string | ArrayBuffer | Uint8Array. Throws ProtocolError on empty frame, unknown type digit, etc. */
export function decodeFrame(frame: string | ArrayBuffer | Uint8Array, version: EngineVersion): EnginePacket {
  if (typeof frame === "string") return decodeTextPacket(frame, version);
  const bytes = frame instanceof Uint8Array ? frame : new Uint8Array(frame);
  // EIO4 binary frames carry message bytes only, so an empty one is an empty message.
  if (version === 4) return { type: "message", data: bytes };
  if (bytes.length === 0) throw new ProtocolError("empty binary frame");
  return { type: packetType(bytes[0]!), data: bytes.subarray(1) };
}

/** HTTP long-polling body for a list of packets (version 3: `<len>:<packet>` concatenated, len in UTF-16 code units, binary as `b4<base64>`; version 4: packets joined by "\x1e", binary as `b<base64>`). */
export function encodePayload(packets: EnginePacket[], version: EngineVersion): string {
  return payloadOf(
    packets.map((packet) => encodeTextFrame(packet, version)),
    version,
  );
}

/** The long-polling body carrying text frames (encodeTextFrame's, or ready-made ones such as a channel's `42[…]`). */
export function payloadOf(frames: string[], version: EngineVersion): string {
  if (version === 4) return frames.join(RECORD_SEPARATOR);
  // engine.io 3 writes an empty poll as the zero-length packet "0:".
  if (frames.length === 0) return "0:";
  let body = "";
  // String length is UTF-16 code units, which is what EIO3 length prefixes count.
  for (const frame of frames) body += frame.length + ":" + frame;
  return body;
}

/** Inverse of encodePayload; throws ProtocolError on garbage (bad length prefix, length past end, empty packet, unknown type...).
 *  EIO3: a zero-length packet (`0:`, what engine.io 3 sends for an empty poll) is skipped, so `0:` decodes to [];
 *  the empty body is an error, as in engine.io 3. */
export function decodePayload(body: string, version: EngineVersion): EnginePacket[] {
  if (body.length === 0) throw new ProtocolError("empty payload");
  const packets: EnginePacket[] = [];
  if (version === 4) {
    let start = 0;
    while (start <= body.length) {
      let end = body.indexOf(RECORD_SEPARATOR, start);
      if (end === -1) end = body.length;
      if (end === start) throw new ProtocolError("empty packet in payload");
      packets.push(decodeTextPacket(body.slice(start, end), 4));
      start = end + 1;
    }
    return packets;
  }
  let pos = 0;
  while (pos < body.length) {
    let length = 0;
    const digitsStart = pos;
    let code = body.charCodeAt(pos);
    while (code !== CHAR_COLON) {
      const digit = code - CHAR_0;
      if (digit < 0 || digit > 9) throw new ProtocolError("bad length prefix in payload");
      length = length * 10 + digit;
      if (++pos === body.length) throw new ProtocolError("length prefix without ':' in payload");
      code = body.charCodeAt(pos);
    }
    if (pos === digitsStart) throw new ProtocolError("empty length prefix in payload");
    const start = pos + 1;
    const end = start + length;
    if (end > body.length) throw new ProtocolError("packet length past end of payload");
    if (length > 0) packets.push(decodeTextPacket(body.slice(start, end), 3));
    pos = end;
  }
  return packets;
}

/** JSONP (EIO3 only, `j=<index>` query): wrap a payload as the response script `___eio[<index>]("<escaped payload>");`.
 *  Non-digits are dropped from the index so the query cannot inject script, as engine.io 3 does. */
export function encodeJsonpResponse(payload: string, index: string): string {
  // U+2028/U+2029 are legal in JSON strings but end a line in older JavaScript parsers.
  const literal = JSON.stringify(payload).replaceAll("\u2028", "\\u2028").replaceAll("\u2029", "\\u2029");
  return "___eio[" + index.replace(/[^0-9]/g, "") + "](" + literal + ");";
}

/** Read a JSONP POST body (form-encoded `d=<payload>`). The client's form textarea escapes a newline as
 *  `\n` and an existing `\n` as `\\n`; this undoes both, with engine.io 3's precedence. */
export function decodeJsonpBody(body: string): string {
  const escaped = new URLSearchParams(body).get("d");
  if (escaped === null) throw new ProtocolError("JSONP body without d=");
  return escaped.replace(/\\(\\)?n/g, (_, doubled: string | undefined) => (doubled ? "\\n" : "\n"));
}

/** The open packet: data JSON {sid, upgrades, pingInterval, pingTimeout} plus maxPayload for version 4 only. */
export function openPacket(
  o: { sid: string; upgrades: string[]; pingInterval: number; pingTimeout: number; maxPayload: number },
  version: EngineVersion,
): EnginePacket {
  const handshake = { sid: o.sid, upgrades: o.upgrades, pingInterval: o.pingInterval, pingTimeout: o.pingTimeout };
  return { type: "open", data: JSON.stringify(version === 4 ? { ...handshake, maxPayload: o.maxPayload } : handshake) };
}

/**
 * A packet as text: what a WebSocket text frame and a polling payload record carry;
 * everything the server sends is text. Binary data goes base64 behind a "b" (EIO3
 * keeps the type digit, EIO4 is message-only), which only polling uses.
 */
export function encodeTextFrame(packet: EnginePacket, version: EngineVersion): string {
  const { data } = packet;
  if (data === undefined) return String(TYPE_CODE[packet.type]);
  if (typeof data === "string") return TYPE_CODE[packet.type] + data;
  if (version === 4) {
    requireBinaryMessage(packet);
    return "b" + bytesToBase64(data);
  }
  return "b" + TYPE_CODE[packet.type] + bytesToBase64(data);
}

function decodeTextPacket(text: string, version: EngineVersion): EnginePacket {
  if (text.length === 0) throw new ProtocolError("empty packet");
  const first = text.charCodeAt(0);
  if (first === CHAR_B) {
    if (version === 4) return { type: "message", data: base64ToBytes(text.slice(1)) };
    return { type: packetType(text.charCodeAt(1) - CHAR_0), data: base64ToBytes(text.slice(2)) };
  }
  const type = packetType(first - CHAR_0);
  return text.length === 1 ? { type } : { type, data: text.slice(1) };
}

function packetType(code: number): EnginePacketType {
  const type = PACKET_TYPES[code];
  if (type === undefined) throw new ProtocolError("unknown packet type");
  return type;
}

function requireBinaryMessage(packet: EnginePacket): void {
  if (packet.type !== "message") throw new ProtocolError(`EIO4 cannot carry binary data in a ${packet.type} packet`);
}

// Keeps String.fromCharCode's argument list well under engine limits.
const BASE64_CHUNK = 0x2000;

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += BASE64_CHUNK) {
    // apply takes the typed array as is; spreading it is several times slower.
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + BASE64_CHUNK) as unknown as number[]);
  }
  return btoa(binary);
}

function base64ToBytes(base64: string): Uint8Array {
  let binary: string;
  try {
    binary = atob(base64);
  } catch {
    throw new ProtocolError("invalid base64");
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
