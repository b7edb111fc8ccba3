/**
 * Connection state recovery, the parts that are plain text: the private session id
 * (`pid`) a Socket.IO v4 client keeps across reconnects, and the offset it reports
 * back. socket.io-client keeps only the last argument of the last event it received
 * as its offset, while our channels number their frames independently; so every
 * offset lists, for each channel of the session, the last frame number the client
 * has been sent there: `<seq>~<channel>|<seq>~<channel>`. Neither `~` nor `|` can
 * appear in a channel name, and nothing in it needs JSON escaping.
 */
import { isValidChannelName } from "../channels/names.ts";
import { isWellFormedId, randomId } from "../ids.ts";

/** A pid names its socket id, so a reconnect finds its channels' records by it, plus a secret only that client was sent. */
export function newPid(socketId: string): string {
  return `${socketId}:${randomId()}`;
}

/** The socket id a client-supplied pid claims, or null when it is not one of ours. */
export function socketIdOfPid(pid: unknown): string | null {
  if (typeof pid !== "string") return null;
  const [socketId, secret, extra] = pid.split(":");
  return extra === undefined && secret !== undefined && isWellFormedId(socketId!) && isWellFormedId(secret) ? socketId! : null;
}

export function encodeOffset(positions: Iterable<[channel: string, seq: number]>): string {
  let offset = "";
  for (const [channel, seq] of positions) offset += (offset ? "|" : "") + seq + "~" + channel;
  return offset;
}

/** A client-supplied offset: channel → last frame number, or null when malformed or listing more than `maxChannels`. */
export function decodeOffset(offset: unknown, maxChannels: number): Map<string, number> | null {
  if (typeof offset !== "string" || offset === "") return null;
  const entries = offset.split("|");
  if (entries.length > maxChannels) return null;
  const positions = new Map<string, number>();
  for (const entry of entries) {
    const tilde = entry.indexOf("~");
    const seq = entry.slice(0, tilde);
    const channel = entry.slice(tilde + 1);
    if (tilde < 1 || !/^\d{1,15}$/.test(seq) || !isValidChannelName(channel) || positions.has(channel)) return null;
    positions.set(channel, Number(seq));
  }
  return positions;
}
