/**
 * The Socket.IO session on its own, with an in-memory channel gateway: CONNECT
 * per revision, subscribe/unsubscribe/whisper rules and per-connection limits.
 */
import { describe, expect, it } from "vitest";
import type { AuthResult, PresenceMember } from "../../worker/channels/auth.ts";
import type { Whisper } from "../../worker/channels/delivery.ts";
import type { Config } from "../../worker/config.ts";
import { readConfig } from "../../worker/config.ts";
import { Session, type ChannelGateway, type ChannelLink, type LinkHandlers } from "../../worker/session/session.ts";
import { decodeOffset, encodeOffset, newPid, socketIdOfPid } from "../../worker/session/recovery.ts";

interface FakeLink {
  channel: string;
  member: PresenceMember | null;
  whispers: Whisper[];
  closed: string | null;
  handlers: LinkHandlers;
}

/** What a channel can hand to a recovering session: its member and the frames the client missed. */
type Recoverable = { pid: string; member: PresenceMember | null; frames: string[]; seqs: number[] };

function harness(overrides: Partial<Config> = {}, revision: 4 | 5 = 5, recoverable: Record<string, Recoverable> = {}) {
  const config = { ...readConfig({} as never), ...overrides };
  /** Every Engine.IO frame the session sent, in order: its own packets and its channels' frames. */
  const wire: string[] = [];
  const closes: string[] = [];
  /** One entry per open() call, in order: a link opened and closed again still shows. */
  const links: FakeLink[] = [];
  /** Auth answers for channels named "…held…" wait here until releaseAuth(): auth in flight. */
  const heldAuth: (() => void)[] = [];
  const gateway: ChannelGateway = {
    async authorize(channel): Promise<AuthResult> {
      if (channel.includes("denied")) return { ok: false, status: 403, reason: "no" };
      const allowed: AuthResult = { ok: true, member: channel.startsWith("presence-") ? { user_id: 1, user_info: { name: "T" } } : null };
      if (channel.includes("held")) return new Promise((resolve) => heldAuth.push(() => resolve(allowed)));
      return allowed;
    },
    async open(channel, _socketId, member, handlers) {
      return fakeLink(channel, member, handlers);
    },
    attach(channel, _socketId, handlers) {
      return fakeLink(channel, null, handlers);
    },
    async recover(channel, { pid }, handlers) {
      const kept = recoverable[channel];
      if (!kept || kept.pid !== pid) return null;
      handlers.onFrames(kept.frames, kept.seqs);
      return { member: kept.member, link: fakeLink(channel, kept.member, handlers) };
    },
  };
  function fakeLink(channel: string, member: PresenceMember | null, handlers: LinkHandlers): ChannelLink {
    const link: FakeLink = { channel, member, whispers: [], closed: null, handlers };
    links.push(link);
    return {
      position: null,
      whisper: (w) => link.whispers.push(w),
      close: (reason) => void (link.closed = reason),
    };
  }
  const session = new Session({
    revision,
    socketId: "sock-1",
    config,
    gateway,
    log: { debug() {}, warn() {} },
    send: (frames) => wire.push(...frames),
    close: (reason) => closes.push(reason),
  });
  const emit = (...args: unknown[]) => session.receive("2" + JSON.stringify(args));
  const settle = () => new Promise((r) => setTimeout(r, 0));
  const releaseAuth = () => heldAuth.splice(0).forEach((release) => release());
  return { session, wire, closes, links, emit, settle, releaseAuth };
}

describe("CONNECT", () => {
  it("revision 4 connects unasked; revision 5 answers the client's CONNECT with its socket id and, with recovery, a pid", () => {
    const v4 = harness({}, 4);
    v4.session.start();
    expect(v4.wire).toEqual(["40"]);
    const v5 = harness({}, 5);
    v5.session.start();
    expect(v5.wire).toEqual([]);
    v5.session.receive('0{"token":"x"}');
    expect(v5.wire).toEqual([expect.stringMatching(/^40\{"sid":"sock-1","pid":"sock-1:\d+\.\d+"\}$/)]);
    const withoutRecovery = harness({ recoveryWindow: 0 }, 5);
    withoutRecovery.session.receive("0");
    expect(withoutRecovery.wire).toEqual(['40{"sid":"sock-1"}']);
  });

  it("refuses other namespaces and events before CONNECT", () => {
    const h = harness();
    h.session.receive("0/admin,");
    expect(h.wire).toEqual(['44/admin,{"message":"Invalid namespace"}']);
    h.session.receive('2["subscribe",{"channel":"a"}]');
    expect(h.closes).toEqual(["protocol error: event before connect"]);
  });
});

describe("subscriptions", () => {
  it("opens one link per channel, forwards its frames, closes it on unsubscribe", async () => {
    const h = harness();
    h.session.receive("0");
    h.emit("subscribe", { channel: "orders" });
    h.emit("subscribe", { channel: "orders" });
    await h.settle();
    expect(h.links.map((l) => l.channel)).toEqual(["orders"]);
    const connected = h.wire.length;
    h.links[0]!.handlers.onFrames(['42["E","orders",1]'], null);
    expect(h.wire.slice(connected)).toEqual(['42["E","orders",1]']);
    h.emit("unsubscribe", { channel: "orders" });
    expect(h.links[0]!.closed).toBe("unsubscribe");
    h.links[0]!.handlers.onFrames(['42["E","orders",2]'], null);
    expect(h.wire.slice(connected)).toEqual(['42["E","orders",1]']);
  });

  it("caps channels per connection with subscription_error 429", async () => {
    const h = harness({ maxChannelsPerConnection: 2 });
    h.session.receive("0");
    for (const channel of ["a", "b", "c"]) h.emit("subscribe", { channel });
    await h.settle();
    expect(h.links.map((l) => l.channel)).toEqual(["a", "b"]);
    expect(h.wire).toContain('42["subscription_error","c",429]');
  });

  it("refused auth sends subscription_error with Laravel's status and opens no link", async () => {
    const h = harness();
    h.session.receive("0");
    h.emit("subscribe", { channel: "private-denied" });
    await h.settle();
    expect(h.links).toEqual([]);
    expect(h.wire).toContain('42["subscription_error","private-denied",403]');
  });

  it("unsubscribing while auth is pending never opens the link", async () => {
    const h = harness();
    h.session.receive("0");
    h.emit("subscribe", { channel: "private-held" });
    await h.settle();
    h.emit("unsubscribe", { channel: "private-held" });
    h.releaseAuth(); // Laravel allows it, after the client has left
    await h.settle();
    expect(h.links).toEqual([]);
    // Subscribing again opens the link: what kept it shut was the unsubscribe.
    h.emit("subscribe", { channel: "private-held" });
    await h.settle();
    h.releaseAuth();
    await h.settle();
    expect(h.links.map((l) => [l.channel, l.closed])).toEqual([["private-held", null]]);
  });

  it("end() closes every link as a disconnect", async () => {
    const h = harness();
    h.session.receive("0");
    h.emit("subscribe", { channel: "a" });
    h.emit("subscribe", { channel: "presence-b" });
    await h.settle();
    h.session.end("client close");
    expect(h.links.map((l) => l.closed)).toEqual(["disconnect", "disconnect"]);
  });
});

describe("whisper", () => {
  it("relays client-* events on joined private/presence channels only", async () => {
    const h = harness();
    h.session.receive("0");
    h.emit("subscribe", { channel: "public" });
    h.emit("subscribe", { channel: "private-chat" });
    await h.settle();
    h.emit("client event", { channel: "public", event: "client-typing", data: 1 });
    h.emit("client event", { channel: "private-other", event: "client-typing", data: 2 });
    h.emit("client event", { channel: "private-chat", event: "typing", data: 3 });
    h.emit("client event", { channel: "private-chat", event: "client-typing", data: 4 });
    expect(h.links.flatMap((l) => l.whispers)).toEqual([{ event: "client-typing", data: 4 }]);
    expect(h.wire.filter((p) => p.includes("echo-edge:error"))).toHaveLength(1);
  });

  it("is rate limited per connection", async () => {
    const h = harness({ whisperRate: 5 });
    h.session.receive("0");
    h.emit("subscribe", { channel: "private-chat" });
    await h.settle();
    for (let i = 0; i < 20; i++) h.emit("client event", { channel: "private-chat", event: "client-x", data: i });
    expect(h.links[0]!.whispers.length).toBe(5);
  });
});

describe("connection state recovery", () => {
  const PID = "11.22:33.44";
  const connectWith = (auth: unknown) => "0" + JSON.stringify(auth);

  it("offsets and pids round-trip; malformed ones are refused", () => {
    const table: [string, number][][] = [[["orders", 0]], [["orders", 5], ["presence-room.1", 12], ["App.Models.User.7", 3]]];
    for (const positions of table) expect([...decodeOffset(encodeOffset(positions), 100)!]).toEqual(positions);
    for (const bad of ["", "5", "~orders", "x~orders", "5~", "5~has space", "5~a|5~a", "1~a|2~b|3~c", 5, null]) {
      expect(decodeOffset(bad, 2)).toBeNull();
    }
    expect(socketIdOfPid(newPid("11.22"))).toBe("11.22");
    for (const bad of ["11.22", "11.22:", "x.1:2.3", "11.22:33.44:55.66", 7]) expect(socketIdOfPid(bad)).toBeNull();
  });

  it("takes back the socket id and channels of a lost session: the CONNECT reply first, then what it missed with offsets; laravel-echo's resubscribe is a no-op", async () => {
    const h = harness({}, 5, {
      orders: { pid: PID, member: null, frames: ['42["E","orders",6]'], seqs: [6] },
      "presence-room": { pid: PID, member: { user_id: 1, user_info: {} }, frames: [], seqs: [] },
    });
    h.session.receive(connectWith({ pid: PID, offset: "5~orders|7~presence-room", token: "from auth" }));
    await h.settle();
    expect(h.wire).toEqual([`40{"sid":"11.22","pid":"${PID}"}`, '42["E","orders",6,"6~orders|7~presence-room"]']);
    expect(h.session.socketId).toBe("11.22");

    const opened = h.links.length;
    h.emit("subscribe", { channel: "orders" });
    h.emit("subscribe", { channel: "presence-room", auth: {} });
    await h.settle();
    expect(h.links).toHaveLength(opened);
    expect(h.session.state()).toEqual({
      socketId: "11.22",
      connected: true,
      pid: PID,
      channels: [
        { channel: "orders", member: null, position: 6 },
        { channel: "presence-room", member: { user_id: 1, user_info: {} }, position: 7 },
      ],
    });
    h.links[0]!.handlers.onFrames(['42["E","orders",8]'], [8]);
    expect(h.wire.at(-1)).toBe('42["E","orders",8,"8~orders|7~presence-room"]');
  });

  it("is all or nothing: a channel with nothing to take up leaves the others as a lost connection would, and the client starts afresh", async () => {
    const h = harness({}, 5, { orders: { pid: PID, member: null, frames: ['42["E","orders",6]'], seqs: [6] } });
    h.session.receive(connectWith({ pid: PID, offset: "5~orders|2~gone" }));
    await h.settle();
    expect(h.wire).toEqual([expect.stringMatching(/^40\{"sid":"sock-1","pid":"sock-1:\d+\.\d+"\}$/)]);
    expect(h.links.map((l) => [l.channel, l.closed])).toEqual([["orders", "lost"]]);
    expect(h.session.state().channels).toEqual([]);
  });

  it("starts afresh on a malformed pid or offset, beyond the subscribe budget, and never with RECOVERY_WINDOW=0", async () => {
    const none = { pid: PID, member: null, frames: [], seqs: [] };
    const kept = { orders: none, a: none, b: none };
    for (const [auth, overrides] of [
      [{ pid: "nope", offset: "5~orders" }, {}],
      [{ pid: PID, offset: "five~orders" }, {}],
      [{ pid: PID }, {}],
      [{ pid: PID, offset: "5~orders" }, { recoveryWindow: 0 }],
      // More channels than the subscribe budget allows at once: as many calls as subscribes would be.
      [{ pid: PID, offset: "5~orders|1~a|2~b" }, { subscribeBurst: 2 }],
    ] as const) {
      const h = harness(overrides, 5, kept);
      h.session.receive(connectWith(auth));
      await h.settle();
      expect(h.session.socketId).toBe("sock-1");
      expect(h.links).toEqual([]);
    }
  });

  it("a lost connection keeps its channels for a recovery; the client's own disconnect, or a client that cannot recover, leaves them", async () => {
    for (const [revision, reason, leave] of [
      [5, "transport close", "lost"],
      [5, "ping timeout", "lost"],
      [5, "client namespace disconnect", "disconnect"],
      [4, "transport close", "disconnect"],
    ] as const) {
      const h = harness({}, revision);
      if (revision === 5) h.session.receive("0");
      else h.session.start();
      h.emit("subscribe", { channel: "orders" });
      await h.settle();
      h.session.end(reason);
      expect(h.links.map((l) => l.closed)).toEqual([leave]);
    }
  });
});
