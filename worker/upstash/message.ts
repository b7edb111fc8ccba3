/**
 * One Redis publish read from Upstash, turned into a publish message with the
 * checks every way in applies (`payloadProblem`, the channel name rules), after one
 * `JSON.parse`. Pure.
 */
import { isValidChannelName } from "../channels/names.ts";
import { isLargerThan, payloadProblem, type PublishMessage } from "../publish/message.ts";

/** As the bridge's default MAX_MESSAGE_BYTES: larger publishes are counted and skipped. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

/** The message to publish on `channel` (prefix already stripped), or why there is none. */
export function publishMessageOf(channel: string, payload: string, maxBytes = MAX_MESSAGE_BYTES): PublishMessage | { problem: string } {
  if (isLargerThan(payload, maxBytes)) return { problem: `larger than ${maxBytes} bytes` };
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
