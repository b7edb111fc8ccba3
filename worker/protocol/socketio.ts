// Socket.IO packet codec (the text inside an Engine.IO message) for protocol revisions 4 and 5,
// which share one wire format; they differ only in what the server does with CONNECT and errors.
import type { EngineVersion } from "./engineio.ts";
import { ProtocolError } from "./errors.ts";

export type SocketRevision = 4 | 5;
export const revisionFor = (version: EngineVersion): SocketRevision => (version === 3 ? 4 : 5);

export const SocketPacketType = {
  CONNECT: 0,
  DISCONNECT: 1,
  EVENT: 2,
  ACK: 3,
  CONNECT_ERROR: 4,
  BINARY_EVENT: 5,
  BINARY_ACK: 6,
} as const;
export type SocketPacketTypeCode = (typeof SocketPacketType)[keyof typeof SocketPacketType];

export interface SocketPacket {
  type: SocketPacketTypeCode;
  nsp: string;
  data?: unknown;
  id?: number;
  attachments?: number;
}

const CHAR_0 = 48;
const CHAR_SLASH = 47;

/** Text encoding of a packet (the Engine.IO message data), e.g. `42["a",1]`, `40{"sid":"x"}`, `42/admin,7["a"]`, `44{"message":"m"}`. "/" namespace omitted. */
export function encodeSocketPacket(packet: SocketPacket): string {
  const { type } = packet;
  let text = String(type);
  if (type === SocketPacketType.BINARY_EVENT || type === SocketPacketType.BINARY_ACK) {
    text += (packet.attachments ?? 0) + "-";
  }
  if (packet.nsp !== "/" && packet.nsp !== "") text += packet.nsp + ",";
  if (packet.id !== undefined) text += packet.id;
  if (packet.data !== undefined) text += JSON.stringify(packet.data);
  return text;
}

/** Throws ProtocolError on: unknown type, bad JSON, EVENT whose data is not a non-empty array with a string first element,
 *  CONNECT payload not an object, id not digits, attachments count malformed. Namespace defaults to "/".
 *  Also rejected: DISCONNECT with data, ACK without id or array, CONNECT_ERROR without a string or object. */
export function decodeSocketPacket(text: string): SocketPacket {
  const type = text.charCodeAt(0) - CHAR_0;
  if (!(type >= 0 && type <= 6)) throw new ProtocolError("unknown socket packet type");
  const packet: SocketPacket = { type: type as SocketPacketTypeCode, nsp: "/" };
  let pos = 1;

  if (type === SocketPacketType.BINARY_EVENT || type === SocketPacketType.BINARY_ACK) {
    const dash = text.indexOf("-", pos);
    if (dash === -1) throw new ProtocolError("binary packet without attachments count");
    packet.attachments = parseDigits(text, pos, dash, "attachments count");
    pos = dash + 1;
  }

  if (text.charCodeAt(pos) === CHAR_SLASH) {
    const comma = text.indexOf(",", pos);
    const nspEnd = comma === -1 ? text.length : comma;
    packet.nsp = text.slice(pos, nspEnd);
    pos = nspEnd + 1;
  }

  const idStart = pos;
  while (isDigit(text.charCodeAt(pos))) pos++;
  if (pos > idStart) packet.id = parseDigits(text, idStart, pos, "ack id");

  if (pos < text.length) {
    try {
      packet.data = JSON.parse(text.slice(pos));
    } catch {
      throw new ProtocolError("socket packet data is not JSON");
    }
  }
  checkPayload(packet);
  return packet;
}

/** The Engine.IO message frame carrying a packet: "4" + its text, the same for Engine.IO 3 and 4. */
export function messageFrame(packet: SocketPacket): string {
  return "4" + encodeSocketPacket(packet);
}

/** The one frame every subscriber of a channel receives: "42" + JSON [event, channel, data]. Identical for revision 4 and 5. */
export function eventPacket(event: string, channel: string, data: unknown): string {
  return "42" + JSON.stringify([event, channel, data]);
}

/**
 * An event frame made by eventPacket() with one more argument at the end: the
 * recovery offset socket.io-client takes from the last argument of each event.
 */
export function withLastArgument(frame: string, argument: string): string {
  return frame.slice(0, -1) + "," + JSON.stringify(argument) + "]";
}

function checkPayload({ type, data, id }: SocketPacket): void {
  switch (type) {
    case SocketPacketType.CONNECT:
      if (data !== undefined && !isPlainObject(data)) throw new ProtocolError("CONNECT payload is not an object");
      return;
    case SocketPacketType.DISCONNECT:
      if (data !== undefined) throw new ProtocolError("DISCONNECT carries data");
      return;
    case SocketPacketType.EVENT:
    case SocketPacketType.BINARY_EVENT:
      if (!Array.isArray(data) || typeof data[0] !== "string") {
        throw new ProtocolError("EVENT payload is not an array starting with the event name");
      }
      return;
    case SocketPacketType.ACK:
    case SocketPacketType.BINARY_ACK:
      if (id === undefined) throw new ProtocolError("ACK without id");
      if (!Array.isArray(data)) throw new ProtocolError("ACK payload is not an array");
      return;
    case SocketPacketType.CONNECT_ERROR:
      // Revision 4 sends a plain string, revision 5 {message, data?}.
      if (typeof data !== "string" && !isPlainObject(data)) {
        throw new ProtocolError("CONNECT_ERROR payload is neither a string nor an object");
      }
      return;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isDigit(code: number): boolean {
  return code >= CHAR_0 && code <= CHAR_0 + 9;
}

/** A non-negative safe integer written as digits only in text[start, end). */
function parseDigits(text: string, start: number, end: number, what: string): number {
  if (end === start) throw new ProtocolError(`empty ${what}`);
  for (let i = start; i < end; i++) {
    if (!isDigit(text.charCodeAt(i))) throw new ProtocolError(`${what} is not digits`);
  }
  const value = Number(text.slice(start, end));
  if (!Number.isSafeInteger(value)) throw new ProtocolError(`${what} too large`);
  return value;
}
