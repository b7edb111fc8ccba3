/**
 * The production ChannelGateway: Laravel auth over HTTP, channel objects over RPC.
 * A session's subscriptions are recorded by each channel under this session's
 * address (its connection host, or its polling object); frames come back through
 * that address's LocalSubscriptions, which the gateway registers the socket in.
 */
import type { Config, Env } from "../config.ts";
import { createLogger } from "../log.ts";
import type { ChannelGateway, ChannelLink, LinkHandlers } from "../session/session.ts";
import { authorizeChannel } from "./auth.ts";
import type { JoinResult, NumberedFrames, RecoverResult, SubscriberAddress } from "./delivery.ts";
import type { FrameSink, LocalSubscriptions } from "./local-subscriptions.ts";
import { channelObjectName } from "./names.ts";

export function channelGateway(
  env: Env,
  config: Config,
  appId: string,
  handshakeCookie: string | null,
  at: SubscriberAddress,
  local: LocalSubscriptions,
): ChannelGateway {
  const log = createLogger(config.devMode);
  const channelObject = (channel: string) => env.CHANNEL.getByName(channelObjectName(appId, channel));
  /** A link's sink in LocalSubscriptions is its registration: closing a link while the socket has another one here leaves nothing. */
  const register = (channel: string, socketId: string, sink: FrameSink): FrameSink => {
    local.register(channel, socketId, sink);
    return sink;
  };

  function link(channel: string, socketId: string, registration: FrameSink, position: number | null): ChannelLink {
    // Whispers and the leave go to the channel one after the other, in the order the client sent them.
    let calls = Promise.resolve();
    const call = (what: string, send: () => Promise<void>) => {
      calls = calls.then(send).catch((error: unknown) => log.warn(what, { channel, socketId, error: String(error) }));
    };
    let closed = false;
    return {
      position,
      whisper(whisper) {
        if (!closed) call("whisper_failed", () => channelObject(channel).whisper(at, socketId, whisper));
      },
      close(reason) {
        if (closed) return;
        closed = true;
        if (!local.unregister(channel, socketId, registration) || reason === "moved") return;
        call("leave_failed", () => channelObject(channel).leave(at, socketId, reason));
      },
    };
  }

  /**
   * Registers the socket before `call` reaches the channel, so a delivery racing its
   * answer is kept: such frames wait until the answer's own frames (`firstOf`) have
   * gone first; those numbered up to `upTo` are already among them.
   */
  async function registered<T>(
    channel: string,
    socketId: string,
    handlers: LinkHandlers,
    call: () => Promise<T | null>,
    firstOf: (answer: T) => NumberedFrames & { upTo: number | null },
  ): Promise<{ answer: T; registration: FrameSink } | null> {
    let held: NumberedFrames[] | null = [];
    const registration = register(channel, socketId, (frames, seqs) => (held ? held.push({ frames, seqs }) : handlers.onFrames(frames, seqs)));
    let answer: T | null;
    try {
      answer = await call();
    } catch (error) {
      local.unregister(channel, socketId, registration);
      throw error;
    }
    const waiting = held;
    held = null;
    if (answer === null) {
      local.unregister(channel, socketId, registration);
      return null;
    }
    const { upTo, ...first } = firstOf(answer);
    for (const { frames, seqs } of [first, ...waiting.map((part) => notAfter(part, upTo))]) {
      if (frames.length > 0) handlers.onFrames(frames, seqs);
    }
    return { answer, registration };
  }

  return {
    authorize: (channel, headers, { socketId, signal }) => authorizeChannel(config, { channel, socketId, headers, handshakeCookie, signal }),

    async open(channel, socketId, member, handlers, { resumed, pid } = {}) {
      const request = { appId, channel, socketId, member, at, ...(resumed && { resumed }), ...(pid && { pid }) };
      const joined = await registered<JoinResult>(
        channel,
        socketId,
        handlers,
        () => channelObject(channel).join(request),
        // The join's own frames (presence:subscribed) stand at the join's position: a session that can recover gets its offset on them.
        ({ frames, position }) => ({ frames, seqs: position === undefined ? null : frames.map(() => position), upTo: null }),
      );
      return link(channel, socketId, joined!.registration, joined!.answer.position ?? null);
    },

    async recover(channel, { socketId, pid, position }, handlers) {
      const recovered = await registered<RecoverResult>(
        channel,
        socketId,
        handlers,
        () => channelObject(channel).recover({ appId, channel, socketId, pid, position, at }),
        (answer) => ({ frames: answer.frames, seqs: answer.seqs, upTo: answer.position }),
      );
      if (!recovered) return null;
      const { answer, registration } = recovered;
      return { member: answer.member, link: link(channel, socketId, registration, answer.position) };
    },

    attach: (channel, socketId, handlers) => link(channel, socketId, register(channel, socketId, handlers.onFrames), null),
  };
}

/** The frames numbered after `upTo` (all of them when either is unnumbered). */
function notAfter(part: NumberedFrames, upTo: number | null): NumberedFrames {
  const { frames, seqs } = part;
  if (upTo === null || seqs === null) return part;
  const fresh = (_: unknown, i: number) => seqs[i]! > upTo;
  return { frames: frames.filter(fresh), seqs: seqs.filter(fresh) };
}
