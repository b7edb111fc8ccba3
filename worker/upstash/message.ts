/**
 * One Redis publish read from Upstash, turned into a publish message with the
 * checks every way in applies (`payloadProblem`, the channel name rules), after one
 * `JSON.parse`. Pure.
 */
import { isValidChannelName } from "../channels/names.ts";
import { payloadProblem, type PublishMessage } from "../publish/message.ts";

/** As the bridge's default MAX_MESSAGE_BYTES: larger publishes are counted and skipped. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

const encoder = new TextEncoder();

/** UTF-8 can take up to 3 bytes per UTF-16 code unit: only long payloads are measured. */
const tooLarge = (payload: string, maxBytes: number) =>
  payload.length > maxBytes || (payload.length * 3 > maxBytes && encoder.encode(payload).byteLength > maxBytes);

/** The message to publish on `channel` (prefix already stripped), or why there is none. */
export function publishMessageOf(channel: string, payload: string, maxBytes = MAX_MESSAGE_BYTES): PublishMessage | { problem: string } {
  if (tooLarge(payload, maxBytes)) return { problem: `larger than ${maxBytes} bytes` };
  if (!isValidChannelName(channel)) return { problem: "invalid channel name" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return { problem: "not JSON" };
  }
  const problem = payloadProblem(parsed);
  if (problem !== null) return { problem };
  const { event, data, socket } = parsed as { event: string; data?: unknown; socket?: string | null };
  // Laravel always sends `data`; a hand-made publish without it gets null, as through the bridge.
  return { channel, event, data: data ?? null, socket: socket ?? null };
}
