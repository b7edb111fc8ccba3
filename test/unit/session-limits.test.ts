/**
 * Issue 9: what one connection can make the edge do is bounded. The session with an
 * in-memory gateway whose auth calls stay pending until a test answers them:
 * subscribe rate, auth calls in flight, cancellation on unsubscribe, whisper bytes.
 * (The channel object re-checks the whisper rules itself: test/unit/channel.test.ts.)
 */
import { describe, expect, it, vi } from "vitest";
import type { AuthResult } from "../../worker/channels/auth.ts";
import { readConfig, type Config } from "../../worker/config.ts";
import { Session, type ChannelGateway } from "../../worker/session/session.ts";

interface AuthCall {
  channel: string;
  signal: AbortSignal;
  answer(result: AuthResult): void;
}

function harness(overrides: Partial<Config>) {
  const config = { ...readConfig({} as never), ...overrides };
  const sent: string[] = [];
  const auths: AuthCall[] = [];
  const links: { channel: string; whispers: unknown[] }[] = [];
  const warnings: { event: string; fields?: Record<string, unknown> }[] = [];
  const gateway: ChannelGateway = {
    authorize(channel, _headers, { signal }) {
      // Like fetch: settles as soon as the call is aborted.
      return new Promise((resolve) => {
        auths.push({ channel, signal, answer: resolve });
        signal.addEventListener("abort", () => resolve({ ok: false, status: 0, reason: "aborted" }));
      });
    },
    async open(channel) {
      const link = { channel, whispers: [] as unknown[] };
      links.push(link);
      return { position: null, whisper: (w) => link.whispers.push(w), close() {} };
    },
    attach() {
      throw new Error("no restored sessions here");
    },
    async recover() {
      return null;
    },
  };
  const session = new Session({
    revision: 5,
    socketId: "1234.5678",
    config,
    gateway,
    log: { debug() {}, warn: (event, fields) => void warnings.push({ event, fields }) },
    send: (frames) => sent.push(...frames),
    close() {},
  });
  session.receive("0");
  const emit = (...args: unknown[]) => session.receive("2" + JSON.stringify(args));
  const settle = () => new Promise((r) => setTimeout(r, 0));
  const errors = () => sent.filter((frame) => frame.startsWith('42["subscription_error"'));
  return { session, sent, auths, links, warnings, emit, settle, errors };
}

const allowed: AuthResult = { ok: true, member: null };

describe("subscribe rate (SUBSCRIBE_RATE / SUBSCRIBE_BURST)", () => {
  it("answers subscribes beyond the burst with subscription_error 429 and never asks Laravel about them", async () => {
    const h = harness({ subscribeBurst: 3, subscribeRate: 1, maxPendingAuth: 10 });
    for (let i = 0; i < 6; i++) h.emit("subscribe", { channel: `private-c${i}` });
    await h.settle();
    expect(h.auths.map((a) => a.channel)).toEqual(["private-c0", "private-c1", "private-c2"]);
    expect(h.errors()).toEqual([3, 4, 5].map((i) => `42["subscription_error","private-c${i}",429]`));
  });

  it("counts public subscribes too, and not repeated subscribes to a joined channel", async () => {
    const h = harness({ subscribeBurst: 2, subscribeRate: 1 });
    h.emit("subscribe", { channel: "orders" });
    h.emit("subscribe", { channel: "orders" });
    h.emit("subscribe", { channel: "invoices" });
    h.emit("subscribe", { channel: "refunds" });
    await h.settle();
    expect(h.links.map((l) => l.channel)).toEqual(["orders", "invoices"]);
    expect(h.errors()).toEqual(['42["subscription_error","refunds",429]']);
  });
});

describe("auth calls in flight (MAX_PENDING_AUTH)", () => {
  it("queues subscribes beyond the limit and asks Laravel in order as answers come back", async () => {
    const h = harness({ maxPendingAuth: 2 });
    for (const channel of ["private-a", "private-b", "private-c", "presence-d"]) h.emit("subscribe", { channel });
    await h.settle();
    expect(h.auths.map((a) => a.channel)).toEqual(["private-a", "private-b"]);
    h.auths[1]!.answer(allowed);
    await h.settle();
    expect(h.auths.map((a) => a.channel)).toEqual(["private-a", "private-b", "private-c"]);
    h.auths[0]!.answer({ ok: false, status: 403, reason: "no" });
    h.auths[2]!.answer(allowed);
    await h.settle();
    h.auths[3]!.answer(allowed);
    await h.settle();
    // A legitimate page with more channels than slots gets every one of them.
    expect(h.links.map((l) => l.channel).sort()).toEqual(["presence-d", "private-b", "private-c"]);
    expect(h.errors()).toEqual(['42["subscription_error","private-a",403]']);
  });

  it("an unsubscribe aborts a pending auth call, and a queued one is never made", async () => {
    const h = harness({ maxPendingAuth: 1 });
    h.emit("subscribe", { channel: "private-first" });
    h.emit("subscribe", { channel: "private-queued" });
    h.emit("subscribe", { channel: "private-last" });
    await h.settle();
    expect(h.auths.map((a) => a.channel)).toEqual(["private-first"]);
    h.emit("unsubscribe", { channel: "private-queued" });
    h.emit("unsubscribe", { channel: "private-first" });
    expect(h.auths[0]!.signal.aborted).toBe(true);
    await h.settle();
    // The aborted call freed its slot for the next subscription still wanted.
    expect(h.auths.map((a) => a.channel)).toEqual(["private-first", "private-last"]);
    expect(h.links).toEqual([]);
    expect(h.errors()).toEqual([]);
  });

  it("a disconnect aborts every pending auth call", async () => {
    const h = harness({ maxPendingAuth: 2 });
    for (const channel of ["private-a", "private-b", "private-c"]) h.emit("subscribe", { channel });
    await h.settle();
    h.session.end("transport close");
    await h.settle();
    expect(h.auths.map((a) => [a.channel, a.signal.aborted])).toEqual([
      ["private-a", true],
      ["private-b", true],
    ]);
    expect(h.links).toEqual([]);
  });
});

describe("whisper volume (WHISPER_BYTES)", () => {
  it("drops whispers beyond the byte budget, however few, with one warning per stretch of drops", async () => {
    const h = harness({ whisperRate: 100, whisperBytes: 1000 });
    h.emit("subscribe", { channel: "private-chat" });
    await h.settle();
    h.auths[0]!.answer(allowed);
    await h.settle();
    const whisper = (n: number, size: number) => h.emit("client event", { channel: "private-chat", event: "client-draw", data: { n, pad: "x".repeat(size) } });
    whisper(1, 2000); // larger than the whole budget
    whisper(2, 400);
    whisper(3, 400);
    whisper(4, 400); // the budget is spent
    whisper(5, 400);
    expect(h.links[0]!.whispers.map((w) => (w as { data: { n: number } }).data.n)).toEqual([2, 3]);
    expect(h.warnings.map((w) => w.event)).toEqual(["whisper_dropped", "whisper_dropped"]);
    expect(h.warnings.map((w) => w.fields?.limit)).toEqual(["WHISPER_BYTES", "WHISPER_BYTES"]);
  });

  it("counts bytes, not characters", async () => {
    const h = harness({ whisperRate: 100, whisperBytes: 1000 });
    h.emit("subscribe", { channel: "private-chat" });
    await h.settle();
    h.auths[0]!.answer(allowed);
    await h.settle();
    // 300 characters, 900 bytes of UTF-8: fits once, not twice.
    h.emit("client event", { channel: "private-chat", event: "client-say", data: "€".repeat(300) });
    h.emit("client event", { channel: "private-chat", event: "client-say", data: "€".repeat(300) });
    expect(h.links[0]!.whispers).toHaveLength(1);
  });
});
