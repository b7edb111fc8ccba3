/**
 * A link is one WebSocket from a client's session (in a Worker, or in a polling
 * session object) to a Channel Durable Object, opened per subscribed channel.
 *
 * Down the link, the channel sends batches of ready-made Engine.IO message frames
 * (`42[event,channel,data]`, the same bytes for EIO 3 and 4) joined by
 * LINK_SEPARATOR (JSON text never contains a raw \x1e), so a publish costs the
 * channel one frame per link and the session forwards frames without parsing them.
 * Up the link, the session sends whispers as JSON `{event, data}`.
 */
import type { PresenceMember } from "./auth.ts";
import { channelObjectName } from "./names.ts";
import type { Env } from "../config.ts";

export const LINK_SEPARATOR = "\x1e";
/** Close code the session uses on an explicit unsubscribe: presence leaves at once, without the reconnect grace. */
export const UNSUBSCRIBE_CLOSE_CODE = 4001;
export const LINK_INFO_HEADER = "x-echo-link";

/** What the channel keeps about each link (its hibernation attachment). */
export interface LinkInfo {
  appId: string;
  channel: string;
  socketId: string;
  member: PresenceMember | null;
  /** This link replaces the socket's link from its previous transport (an upgrade): the channel closes that one, silently. */
  resumed?: boolean;
}

export interface Whisper {
  event: string;
  data: unknown;
}

export interface LinkHandlers {
  onFrames(frames: string[]): void;
  /** The channel closed the link without being asked (deploy, eviction, error). */
  onLost(): void;
}

export interface ChannelLink {
  whisper(whisper: Whisper): void;
  close(reason: "unsubscribe" | "disconnect"): void;
}

export async function openChannelLink(env: Env, info: LinkInfo, handlers: LinkHandlers): Promise<ChannelLink> {
  const stub = env.CHANNEL.getByName(channelObjectName(info.appId, info.channel));
  const response = await stub.fetch("https://channel.internal/link", {
    headers: { upgrade: "websocket", [LINK_INFO_HEADER]: JSON.stringify(info) },
  });
  const ws = response.webSocket;
  if (!ws) throw new Error(`channel refused the link: ${response.status} ${await response.text()}`);
  ws.accept();
  let closedByUs = false;
  ws.addEventListener("message", (event) => {
    if (typeof event.data === "string") handlers.onFrames(event.data.split(LINK_SEPARATOR));
  });
  const lost = () => {
    if (!closedByUs) handlers.onLost();
    closedByUs = true;
  };
  ws.addEventListener("close", lost);
  ws.addEventListener("error", lost);
  return {
    whisper(whisper) {
      if (!closedByUs) ws.send(JSON.stringify(whisper));
    },
    close(reason) {
      if (closedByUs) return;
      closedByUs = true;
      try {
        ws.close(reason === "unsubscribe" ? UNSUBSCRIBE_CLOSE_CODE : 1000, reason);
      } catch {
        // already closing
      }
    },
  };
}
