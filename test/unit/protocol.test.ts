import { describe, expect, it } from "vitest";
import {
  decodeFrame,
  decodeJsonpBody,
  decodePayload,
  encodeFrame,
  encodeJsonpResponse,
  encodePayload,
  openPacket,
  type EnginePacket,
  type EngineVersion,
} from "../../worker/protocol/engineio.ts";
import { ProtocolError } from "../../worker/protocol/errors.ts";
import {
  SocketPacketType,
  decodeSocketPacket,
  encodeSocketPacket,
  eventPacket,
  revisionFor,
  type SocketPacket,
} from "../../worker/protocol/socketio.ts";

const VERSIONS: EngineVersion[] = [3, 4];
const bytes = (...values: number[]) => new Uint8Array(values);
const DEADBEEF = bytes(0xde, 0xad, 0xbe, 0xef); // base64 "3q2+7w=="
const OPEN = openPacket({ sid: "abc", upgrades: ["websocket"], pingInterval: 25000, pingTimeout: 5000, maxPayload: 1e6 }, 3);

describe("openPacket", () => {
  it.each([
    [3, '{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}'],
    [4, '{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000,"maxPayload":1000000}'],
  ] as const)("EIO%i", (version, data) => {
    const options = { sid: "abc", upgrades: ["websocket"], pingInterval: 25000, pingTimeout: 5000, maxPayload: 1e6 };
    expect(openPacket(options, version)).toEqual({ type: "open", data });
  });
});

describe("engine frames", () => {
  // Text frames are the same in both versions.
  const textFrames: [EnginePacket, string][] = [
    [{ type: "open", data: '{"sid":"abc"}' }, '0{"sid":"abc"}'],
    [{ type: "close" }, "1"],
    [{ type: "ping" }, "2"],
    [{ type: "ping", data: "probe" }, "2probe"],
    [{ type: "pong" }, "3"],
    [{ type: "pong", data: "probe" }, "3probe"],
    [{ type: "message", data: "hello" }, "4hello"],
    [{ type: "message", data: '2["a","€😀"]' }, '42["a","€😀"]'],
    [{ type: "upgrade" }, "5"],
    [{ type: "noop" }, "6"],
  ];
  const cases = VERSIONS.flatMap((version) => textFrames.map(([packet, frame]) => [version, frame, packet] as const));

  it.each(cases)("EIO%i %j round-trips", (version, frame, packet) => {
    expect(encodeFrame(packet, version)).toBe(frame);
    expect(decodeFrame(frame, version)).toEqual(packet);
  });

  it.each([
    [3, bytes(4, 0xde, 0xad, 0xbe, 0xef)],
    [4, DEADBEEF],
  ] as const)("EIO%i binary message", (version, frame) => {
    const packet: EnginePacket = { type: "message", data: DEADBEEF };
    expect(encodeFrame(packet, version)).toEqual(frame);
    expect(decodeFrame(frame, version)).toEqual(packet);
    expect(decodeFrame(frame.slice().buffer, version)).toEqual(packet);
  });

  it("EIO3 binary frames keep their type byte", () => {
    expect(decodeFrame(bytes(2, 1), 3)).toEqual({ type: "ping", data: bytes(1) });
  });

  it.each([new ArrayBuffer(0), "b"])("EIO4 %j is an empty binary message", (frame) => {
    expect(decodeFrame(frame, 4)).toEqual({ type: "message", data: bytes() });
  });

  it.each([
    [3, "b43q2+7w=="],
    [4, "b3q2+7w=="],
  ] as const)("EIO%i base64 text frame decodes to bytes", (version, frame) => {
    expect(decodeFrame(frame, version)).toEqual({ type: "message", data: DEADBEEF });
  });

  it("EIO4 refuses binary data outside a message", () => {
    expect(() => encodeFrame({ type: "ping", data: DEADBEEF }, 4)).toThrow(ProtocolError);
  });

  const malformed: [EngineVersion, string | Uint8Array, string][] = VERSIONS.flatMap((version) => [
    [version, "", "empty frame"],
    [version, "9", "unknown type digit"],
    [version, "x", "non-digit type"],
    [version, "/", "char just below '0'"],
  ] as [EngineVersion, string, string][]);
  malformed.push(
    [3, bytes(), "empty binary frame"],
    [3, bytes(9, 1), "unknown binary type byte"],
    [3, "b", "base64 marker without a type"],
    [3, "b9AAAA", "base64 packet with unknown type"],
    [3, "b4!!!!", "invalid base64"],
    [4, "b!!!!", "invalid base64"],
  );
  it.each(malformed)("EIO%i %j throws (%s)", (version, frame) => {
    expect(() => decodeFrame(frame, version)).toThrow(ProtocolError);
  });
});

describe("engine payloads", () => {
  const payloads: [EngineVersion, EnginePacket[], string][] = [
    // engine.io 3 answers an empty poll with "0:".
    [3, [], "0:"],
    [3, [{ type: "message", data: "hello" }], "6:4hello"],
    [3, [{ type: "close" }], "1:1"],
    [3, [{ type: "noop" }], "1:6"],
    [3, [{ type: "ping", data: "probe" }], "6:2probe"],
    // socket.io 2.4's first poll: open packet, then the unasked CONNECT for "/".
    [3, [OPEN, { type: "message", data: "0" }], `${OPEN.data!.length + 1}:0${OPEN.data}2:40`],
    [3, [{ type: "message", data: "a:b" }, { type: "message", data: "12:" }], "4:4a:b4:412:"],
    // Length prefixes count UTF-16 code units: "€" is 1 (3 UTF-8 bytes), "😀" is 2 (4 UTF-8 bytes).
    [3, [{ type: "message", data: "€" }], "2:4€"],
    [3, [{ type: "message", data: "😀" }], "3:4😀"],
    [3, [{ type: "message", data: "héllo" }], "6:4héllo"],
    [3, [{ type: "message", data: '2["a","€😀"]' }, { type: "ping" }], '13:42["a","€😀"]1:2'],
    // b64=1 binary: "b", type digit, base64; the prefix counts that whole string.
    [3, [{ type: "message", data: DEADBEEF }], "10:b43q2+7w=="],
    [3, [{ type: "message", data: "x" }, { type: "message", data: DEADBEEF }], "2:4x10:b43q2+7w=="],
    [4, [{ type: "message", data: "hello" }], "4hello"],
    [4, [{ type: "close" }], "1"],
    [4, [{ type: "message", data: "hello" }, { type: "ping" }, { type: "noop" }], "4hello\x1e2\x1e6"],
    [4, [{ type: "message", data: '2["a","€😀"]' }, { type: "pong", data: "probe" }], '42["a","€😀"]\x1e3probe'],
    [4, [{ type: "message", data: DEADBEEF }], "b3q2+7w=="],
    [4, [{ type: "message", data: "x" }, { type: "message", data: DEADBEEF }], "4x\x1eb3q2+7w=="],
  ];
  // Every packet type alone in a payload, both versions.
  for (const packet of [OPEN, { type: "close" }, { type: "ping" }, { type: "pong" }, { type: "upgrade" }, { type: "noop" }] as EnginePacket[]) {
    const text = encodeFrame(packet, 3) as string;
    payloads.push([3, [packet], `${text.length}:${text}`], [4, [packet], text]);
  }

  it.each(payloads)("EIO%i %j round-trips as %j", (version, packets, body) => {
    expect(encodePayload(packets, version)).toBe(body);
    expect(decodePayload(body, version)).toEqual(packets);
  });

  it("EIO3 skips zero-length packets anywhere, as engine.io 3 does", () => {
    expect(decodePayload("0:1:60:", 3)).toEqual([{ type: "noop" }]);
  });

  it("EIO4 empty list encodes to an empty body", () => {
    expect(encodePayload([], 4)).toBe("");
  });

  it("binary survives all 256 byte values", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    for (const version of VERSIONS) {
      expect(decodePayload(encodePayload([{ type: "message", data: all }], version), version)).toEqual([
        { type: "message", data: all },
      ]);
    }
  });

  it.each([
    [3, "", "empty body"],
    [3, "abc", "no length prefix"],
    [3, "5:4a", "length past end"],
    [3, "2:4ab", "trailing bytes after the last packet"],
    [3, "3:4ab4", "trailing digits without ':'"],
    [3, ":4a", "empty length prefix"],
    [3, "-1:4", "sign in length prefix"],
    [3, "1 :4", "space in length prefix"],
    [3, "1:9", "unknown type digit"],
    [3, "1:x", "non-digit type"],
    [3, "2:b9", "base64 packet with unknown type"],
    [3, "6:b4!!!!", "invalid base64"],
    [3, "99999999999999999999:4", "absurd length"],
    [4, "", "empty body"],
    [4, "\x1e", "only a separator"],
    [4, "4a\x1e", "trailing separator"],
    [4, "\x1e4a", "leading separator"],
    [4, "4a\x1e\x1e4b", "empty segment in the middle"],
    [4, "9", "unknown type digit"],
    [4, "4a\x1ex", "non-digit type in a later segment"],
    [4, "b!!!!", "invalid base64"],
  ] as [EngineVersion, string, string][])("EIO%i %j throws (%s)", (version, body) => {
    expect(() => decodePayload(body, version)).toThrow(ProtocolError);
  });

  // "3:4ab" is well-formed (a message "ab"), not garbage.
  it("EIO3 3:4ab is the message ab", () => {
    expect(decodePayload("3:4ab", 3)).toEqual([{ type: "message", data: "ab" }]);
  });
});

describe("JSONP (EIO3)", () => {
  it.each([
    ["1:6", "0", '___eio[0]("1:6");'],
    ['12:42["a","b"]', "3", String.raw`___eio[3]("12:42[\"a\",\"b\"]");`],
    ["3:4a\nb", "1", String.raw`___eio[1]("3:4a\nb");`],
    // JSON allows these two raw, older JavaScript does not.
    ["3:4\u2028\u2029", "2", String.raw`___eio[2]("3:4\u2028\u2029");`],
    ["2:4€", "7", '___eio[7]("2:4€");'],
    // The index comes from the query: anything but digits is dropped.
    ["1:6", "1);alert(1", '___eio[11]("1:6");'],
  ])("wraps %j with index %j", (payload, index, script) => {
    expect(encodeJsonpResponse(payload, index)).toBe(script);
  });

  it.each([
    ["d=1%3A6", "1:6"],
    ["d=12%3A42%5B%22a%22%2C%22b%22%5D", '12:42["a","b"]'],
    // "+" is a form-encoded space.
    ["d=3%3A4a+b", "3:4a b"],
    ["d=2%3A4%E2%82%AC", "2:4€"],
    // The client writes a newline as \n and an existing \n as \\n.
    [`d=${encodeURIComponent(String.raw`4:4a\nb`)}`, "4:4a\nb"],
    [`d=${encodeURIComponent(String.raw`6:4a\\nb`)}`, String.raw`6:4a\nb`],
    [`d=${encodeURIComponent(String.raw`a\\\nb`)}`, String.raw`a\\nb`],
    [`d=${encodeURIComponent(String.raw`a\b`)}`, String.raw`a\b`],
    ["x=1&d=1%3A6", "1:6"],
  ])("reads %j", (body, payload) => {
    expect(decodeJsonpBody(body)).toBe(payload);
  });

  it("a JSON payload with escaped newlines survives the client's escaping", () => {
    const payload = encodePayload([{ type: "message", data: JSON.stringify(["a", "line1\nline2\\n"]) }], 3);
    // What engine.io-client 3 puts in its form textarea.
    const escaped = payload.replaceAll("\\n", "\\\n").replaceAll("\n", "\\n");
    expect(decodeJsonpBody("d=" + encodeURIComponent(escaped))).toBe(payload);
  });

  it("throws without d=", () => {
    expect(() => decodeJsonpBody("x=1")).toThrow(ProtocolError);
    expect(() => decodeJsonpBody("")).toThrow(ProtocolError);
  });
});

describe("socket packets", () => {
  it("revision follows the engine version", () => {
    expect(revisionFor(3)).toBe(4);
    expect(revisionFor(4)).toBe(5);
  });

  const { CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK } = SocketPacketType;
  const placeholder = { _placeholder: true, num: 0 };
  const packets: [SocketPacket, string][] = [
    [{ type: CONNECT, nsp: "/" }, "0"],
    [{ type: CONNECT, nsp: "/", data: { sid: "x" } }, '0{"sid":"x"}'],
    [{ type: CONNECT, nsp: "/", data: { token: "t" } }, '0{"token":"t"}'],
    [{ type: CONNECT, nsp: "/admin" }, "0/admin,"],
    [{ type: CONNECT, nsp: "/admin", data: { token: "t" } }, '0/admin,{"token":"t"}'],
    [{ type: DISCONNECT, nsp: "/" }, "1"],
    [{ type: DISCONNECT, nsp: "/admin" }, "1/admin,"],
    [{ type: EVENT, nsp: "/", data: ["a", 1] }, '2["a",1]'],
    [{ type: EVENT, nsp: "/", data: ["a"], id: 7 }, '27["a"]'],
    [{ type: EVENT, nsp: "/admin", data: ["a"] }, '2/admin,["a"]'],
    [{ type: EVENT, nsp: "/admin", data: ["a"], id: 7 }, '2/admin,7["a"]'],
    [{ type: EVENT, nsp: "/", data: ["subscribe", { channel: "private-€😀", auth: { headers: {} } }] }, '2["subscribe",{"channel":"private-€😀","auth":{"headers":{}}}]'],
    [{ type: ACK, nsp: "/", id: 7, data: [] }, "37[]"],
    [{ type: ACK, nsp: "/admin", id: 12, data: ["ok"] }, '3/admin,12["ok"]'],
    [{ type: CONNECT_ERROR, nsp: "/", data: { message: "m" } }, '4{"message":"m"}'],
    [{ type: CONNECT_ERROR, nsp: "/", data: "Invalid namespace" }, '4"Invalid namespace"'],
    [{ type: CONNECT_ERROR, nsp: "/admin", data: { message: "m" } }, '4/admin,{"message":"m"}'],
    [{ type: BINARY_EVENT, nsp: "/", attachments: 1, data: ["up", placeholder] }, '51-["up",{"_placeholder":true,"num":0}]'],
    [{ type: BINARY_EVENT, nsp: "/admin", attachments: 2, id: 3, data: ["up"] }, '52-/admin,3["up"]'],
    [{ type: BINARY_ACK, nsp: "/", attachments: 1, id: 4, data: [placeholder] }, '61-4[{"_placeholder":true,"num":0}]'],
    [{ type: BINARY_ACK, nsp: "/admin", attachments: 10, id: 4, data: [] }, "610-/admin,4[]"],
  ];

  it.each(packets)("%j round-trips as %j", (packet, text) => {
    expect(encodeSocketPacket(packet)).toBe(text);
    expect(decodeSocketPacket(text)).toEqual(packet);
  });

  it("a namespace without a trailing comma runs to the end", () => {
    expect(decodeSocketPacket("1/admin")).toEqual({ type: DISCONNECT, nsp: "/admin" });
  });

  // Each is the data of an Engine.IO message: the frame "42{}" is the message "2{}".
  it.each([
    ["", "frame 4: no packet type"],
    ["9", "frame 49: unknown type"],
    ["x", "non-digit type"],
    ["2", "EVENT without data"],
    ['2["a"', "bad JSON"],
    ["2{}", "frame 42{}: EVENT object"],
    ["2[]", "frame 42[]: EVENT empty array"],
    ["2[1]", "frame 42[1]: EVENT name not a string"],
    ["2null", "EVENT null"],
    ['0"str"', 'frame 40"str": CONNECT string'],
    ["0[]", "CONNECT array"],
    ["0null", "CONNECT null"],
    ['1"x"', "DISCONNECT with data"],
    ["3[]", "ACK without id"],
    ["37{}", "ACK object"],
    ["37", "ACK without data"],
    ["4", "CONNECT_ERROR without data"],
    ["44", "CONNECT_ERROR with an id and no data"],
    ["4[1]", "CONNECT_ERROR array"],
    ['2/admin,x["a"]', "id not digits"],
    ['2/admin,7x["a"]', "junk after id"],
    ['299999999999999999999["a"]', "id beyond safe integers"],
    ['5["a"]', "BINARY_EVENT without attachments count"],
    ['5-["a"]', "empty attachments count"],
    ['5x-["a"]', "attachments count not digits"],
    ['51-2-["a"]', "junk after the attachments count"],
    ["51-", "BINARY_EVENT without data"],
    ["61-[]", "BINARY_ACK without id"],
  ])("%j throws (%s)", (text) => {
    expect(() => decodeSocketPacket(text)).toThrow(ProtocolError);
  });
});

describe("eventPacket", () => {
  it.each([
    [String.raw`App\Events\OrderShipped`, "orders", { id: 1, socket: null }, String.raw`42["App\\Events\\OrderShipped","orders",{"id":1,"socket":null}]`],
    ["presence:subscribed", "presence-room", [{ user_id: 1, user_info: { name: "A" } }], '42["presence:subscribed","presence-room",[{"user_id":1,"user_info":{"name":"A"}}]]'],
    ["subscription_error", "private-x", 403, '42["subscription_error","private-x",403]'],
    ["client-typing", "private-chat", "€😀 \"quoted\"", String.raw`42["client-typing","private-chat","€😀 \"quoted\""]`],
    ["e", "c", null, '42["e","c",null]'],
    ["e", "c", undefined, '42["e","c",null]'],
  ])("%s on %s", (event, channel, data, frame) => {
    expect(eventPacket(event, channel, data)).toBe(frame);
  });

  it.each(VERSIONS)("is a message frame holding an EVENT for EIO%i", (version) => {
    const message = decodeFrame(eventPacket("e", "orders", { a: 1 }), version);
    expect(message.type).toBe("message");
    expect(decodeSocketPacket(message.data as string)).toEqual({ type: SocketPacketType.EVENT, nsp: "/", data: ["e", "orders", { a: 1 }] });
  });
});
