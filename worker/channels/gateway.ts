/** The production ChannelGateway: Laravel auth over HTTP, links to Channel Durable Objects. */
import type { Config, Env } from "../config.ts";
import type { ChannelGateway } from "../session/session.ts";
import { authorizeChannel } from "./auth.ts";
import { openChannelLink } from "./link.ts";

export function channelGateway(env: Env, config: Config, appId: string, handshakeCookie: string | null): ChannelGateway {
  return {
    authorize: (channel, headers, { socketId, signal }) => authorizeChannel(config, { channel, socketId, headers, handshakeCookie, signal }),
    open: (channel, socketId, member, handlers, resumed) =>
      openChannelLink(env, { appId, channel, socketId, member, ...(resumed && { resumed }) }, handlers),
  };
}
