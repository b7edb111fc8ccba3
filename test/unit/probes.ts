/**
 * Channel tests' subscribers: sockets of DeliveryProbe hosts (test/unit/delivery-probe.ts),
 * which subscribe through the production gateway and record what reaches them.
 */
import { env } from "cloudflare:test";
import type { PresenceMember } from "../../worker/channels/auth.ts";
import type { LeaveReason } from "../../worker/channels/delivery.ts";
import { channelObjectName } from "../../worker/channels/names.ts";
import type { DeliveryProbe } from "./delivery-probe.ts";

export type ProbeHost = DurableObjectStub<DeliveryProbe>;

/** A probe host; bound as HOST in the workerd-channels project. */
export function probeHost(name = `probe-${crypto.randomUUID()}`): ProbeHost {
  return env.HOST.getByName(name) as unknown as ProbeHost;
}

export function channelStub(appId: string, channel: string) {
  return env.CHANNEL.getByName(channelObjectName(appId, channel));
}

/** A socket of `host` subscribed to `channel` of `appId`; `frames()` reads the `[event, channel, data]` frames it received. */
export async function subscribed(
  appId: string,
  channel: string,
  socketId: string,
  member: PresenceMember | null = null,
  host = probeHost(),
  pid?: string,
) {
  await host.join(appId, channel, socketId, member, false, pid);
  return {
    host,
    socketId,
    stub: channelStub(appId, channel),
    frames: () => host.frames(socketId) as Promise<unknown[][]>,
    whisper: (event: string, data: unknown) => host.whisper(channel, socketId, { event, data }),
    close: (reason: LeaveReason) => host.close(channel, socketId, reason),
  };
}
