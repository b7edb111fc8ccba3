/** Channel naming rules shared by the session, the publish routes and the HTTP API. */

export type ChannelKind = "public" | "private" | "presence";

// Laravel channel names are dotted identifiers (`orders.12`, `App.Models.User.1`);
// this is Pusher's charset plus `:` `#` `/` which some apps use. Length is capped so
// a name always fits a Durable Object name and a log line.
const VALID_NAME = /^[A-Za-z0-9_\-=@,.;:#+/]{1,200}$/;

export function isValidChannelName(name: unknown): name is string {
  return typeof name === "string" && VALID_NAME.test(name);
}

export function channelKind(name: string): ChannelKind {
  if (name.startsWith("presence-")) return "presence";
  if (name.startsWith("private-")) return "private";
  return "public";
}

/** Durable Object name of a channel: one object per (app, channel). */
export function channelObjectName(appId: string, channel: string): string {
  return `${appId}\n${channel}`;
}
