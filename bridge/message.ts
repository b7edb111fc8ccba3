/**
 * Turns one Redis publish into the JSON text of one message of the worker's
 * publish body: `{"event":..,"data":..,"socket":..,"channel":..}`.
 *
 * The payload is parsed once to validate it, then the channel is spliced into the
 * original text rather than re-serialising the data, which keeps the hot path to
 * one JSON.parse per message. The channel goes last so that it wins over any
 * `channel` key the payload might carry (JSON.parse keeps the last duplicate).
 * What counts as a usable payload is the worker's own rule (worker/publish/message.ts).
 */
import { isLargerThan, payloadProblem } from "../worker/publish/message.ts";

export type RejectionReason = "notJson" | "shapeless" | "tooLarge";

export interface Rejection {
  reason: RejectionReason;
}

const NOT_JSON: Rejection = { reason: "notJson" };
const SHAPELESS: Rejection = { reason: "shapeless" };
const TOO_LARGE: Rejection = { reason: "tooLarge" };

/**
 * What laravel-echo-server would broadcast: an object with a non-empty string `event`; `data`
 * any JSON (null when absent); `socket`, the sender to skip, a string or null.
 */
export function toWireMessage(channel: string, payload: string, maxBytes: number): string | Rejection {
  if (isLargerThan(payload, maxBytes)) return TOO_LARGE;
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return NOT_JSON;
  }
  if (payloadProblem(parsed) !== null) return SHAPELESS;
  const { data, socket } = parsed as { data?: unknown; socket?: unknown };
  let tail = ',"channel":' + JSON.stringify(channel);
  if (data === undefined) tail += ',"data":null';
  if (socket === undefined) tail += ',"socket":null';
  // A parsed object with an `event` key has at least one member, so a comma fits before the tail.
  return payload.slice(0, payload.lastIndexOf("}")) + tail + "}";
}
