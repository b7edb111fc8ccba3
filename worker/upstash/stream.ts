/**
 * Upstash's REST subscribe stream, parsed: `POST <url>/psubscribe/<pattern>` with
 * `Accept: text/event-stream` answers server-sent events whose `data:` lines carry
 * one reply each, `psubscribe,<pattern>,<count>` to confirm and then
 * `pmessage,<pattern>,<channel>,<message>` per publish. Pure; no I/O.
 *
 * The message is everything after the channel, commas included, unescaped. A
 * message with a line break cannot travel in one `data:` line; Upstash's own client
 * (`@upstash/redis`) reads one reply per line as well, so such a message arrives cut
 * and fails validation like any other bad message.
 */

export type UpstashReply =
  | { type: "psubscribe"; count: number }
  | { type: "pmessage"; channel: string; message: string }
  | { type: "unknown" };

const UNKNOWN: UpstashReply = { type: "unknown" };

/**
 * Splits decoded stream text into lines, holding at most `maxLineLength` characters
 * of an unfinished line: a longer line is reported once and skipped up to its end.
 */
export class LineSplitter {
  private readonly maxLineLength: number;
  private partial = "";
  /** Inside a line already reported as oversized: drop text until its newline. */
  private skipping = false;

  constructor(maxLineLength: number) {
    this.maxLineLength = maxLineLength;
  }

  push(text: string, onLine: (line: string) => void, onOversized: () => void): void {
    let start = 0;
    for (let end = text.indexOf("\n"); end !== -1; end = text.indexOf("\n", start)) {
      if (this.skipping) {
        this.skipping = false;
      } else {
        const line = this.partial + text.slice(start, end);
        this.partial = "";
        if (line.length > this.maxLineLength) onOversized();
        else onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
      }
      start = end + 1;
    }
    if (this.skipping) return;
    this.partial += text.slice(start);
    if (this.partial.length > this.maxLineLength) {
      this.partial = "";
      this.skipping = true;
      onOversized();
    }
  }
}

/** The value of an event stream `data:` field, or null for any other line (comments, ids, blank separators). */
export function dataField(line: string): string | null {
  if (!line.startsWith("data:")) return null;
  return line.charCodeAt(5) === 0x20 ? line.slice(6) : line.slice(5);
}

/**
 * One reply of the stream subscribed to `pattern`. Channel names may contain commas
 * (Pusher's charset allows them) but never `{`, and a valid message is a JSON
 * object, so the channel ends at the first `,{`; failing that, at the first comma.
 */
export function parseReply(data: string, pattern: string): UpstashReply {
  const message = `pmessage,${pattern},`;
  if (data.startsWith(message)) {
    const rest = data.slice(message.length);
    let end = rest.indexOf(",{");
    if (end === -1) end = rest.indexOf(",");
    if (end === -1) return UNKNOWN;
    return { type: "pmessage", channel: rest.slice(0, end), message: rest.slice(end + 1) };
  }
  const confirmation = `psubscribe,${pattern},`;
  if (data.startsWith(confirmation)) {
    const count = Number(data.slice(confirmation.length));
    return Number.isInteger(count) ? { type: "psubscribe", count } : UNKNOWN;
  }
  return UNKNOWN;
}
