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
import type { SubscriberAddress } from "./delivery.ts";
import type { LocalSubscriptions } from "./local-subscriptions.ts";
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
  /** Per channel and socket, the latest open or attach: a superseded link's close must not undo its successor. */
  const current = new Map<string, object>();
  const keyOf = (channel: string, socketId: string) => `${channel}\n${socketId}`;

  function register(channel: string, socketId: string, onFrames: LinkHandlers["onFrames"]): object {
    const registration = {};
    current.set(keyOf(channel, socketId), registration);
    local.register(channel, socketId, onFrames);
    return registration;
  }

  function unregister(channel: string, socketId: string, registration: object): boolean {
    const key = keyOf(channel, socketId);
    if (current.get(key) !== registration) return false;
    current.delete(key);
    local.unregister(channel, socketId);
    return true;
  }

  function link(channel: string, socketId: string, registration: object): ChannelLink {
    // Whispers and the leave go to the channel one after the other, in the order the client sent them.
    let calls = Promise.resolve();
    const call = (what: string, send: () => Promise<void>) => {
      calls = calls.then(send).catch((error: unknown) => log.warn(what, { channel, socketId, error: String(error) }));
    };
    let closed = false;
    return {
      whisper(whisper) {
        if (!closed) call("whisper_failed", () => channelObject(channel).whisper(at, socketId, whisper));
      },
      close(reason) {
        if (closed) return;
        closed = true;
        if (!unregister(channel, socketId, registration) || reason === "moved") return;
        call("leave_failed", () => channelObject(channel).leave(at, socketId, reason === "unsubscribe"));
      },
    };
  }

  return {
    authorize: (channel, headers, { socketId, signal }) => authorizeChannel(config, { channel, socketId, headers, handshakeCookie, signal }),

    async open(channel, socketId, member, handlers, resumed) {
      // Registered before the join, so a delivery racing the join's answer is kept;
      // held until the join's own frames (presence:subscribed) have gone first.
      let held: string[] | null = [];
      const registration = register(channel, socketId, (frames) => (held ? held.push(...frames) : handlers.onFrames(frames)));
      let joined;
      try {
        joined = await channelObject(channel).join({ appId, channel, socketId, member, at, ...(resumed && { resumed }) });
      } catch (error) {
        unregister(channel, socketId, registration);
        throw error;
      }
      const first = [...joined.frames, ...held];
      held = null;
      if (first.length > 0) handlers.onFrames(first);
      return link(channel, socketId, registration);
    },

    attach: (channel, socketId, handlers) => link(channel, socketId, register(channel, socketId, handlers.onFrames)),
  };
}
