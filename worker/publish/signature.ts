/**
 * Signing of bridge publishes. Pure WebCrypto, so the worker (verify) and the Node
 * bridge (sign) share this one module.
 *
 * The signature is HMAC-SHA256 over `<method>\n<path>\n<timestamp>\n<body>`, hex
 * encoded, sent as `X-Echo-Signature: v2=<hex>` with `X-Echo-Timestamp: <unix ms>`.
 * The path is the endpoint's own, `/apps/<appId>/publish` (whatever prefix a proxy
 * adds in front), so a captured batch cannot be replayed to another app or endpoint;
 * the timestamp lets the worker refuse it outside a short window, and the channels
 * remember batch ids for that window, so inside it a replay delivers nothing.
 */
import { fromHex, hmacHex, hmacMatches, signedBytes } from "../crypto.ts";

export const SIGNATURE_HEADER = "x-echo-signature";
export const TIMESTAMP_HEADER = "x-echo-timestamp";
export const REPLAY_WINDOW_MS = 5 * 60 * 1000;

const SCHEME = "v2=";

/** What a signature covers besides its timestamp. */
export interface SignedRequest {
  method: string;
  path: string;
  body: string | Uint8Array;
}

/** The bridge's endpoint for `appId`, as signed. */
export function publishPath(appId: string): string {
  return `/apps/${encodeURIComponent(appId)}/publish`;
}

const signedMessage = (timestamp: number, { method, path, body }: SignedRequest) =>
  signedBytes(`${method.toUpperCase()}\n${path}\n${timestamp}\n`, body);

/** Headers to attach to a signed publish request. */
export async function signatureHeaders(secret: string, request: SignedRequest, now = Date.now()): Promise<Record<string, string>> {
  return {
    [TIMESTAMP_HEADER]: String(now),
    [SIGNATURE_HEADER]: SCHEME + (await hmacHex(secret, signedMessage(now, request))),
  };
}

export type SignatureHeaders = { ok: true; timestamp: number; mac: Uint8Array } | { ok: false; reason: string };

/** Checks what the headers alone can tell (present, fresh, well formed), so a request can be refused before its body is read. */
export function readSignature(
  timestampHeader: string | null | undefined,
  signatureHeader: string | null | undefined,
  now = Date.now(),
): SignatureHeaders {
  if (!timestampHeader || !signatureHeader) return { ok: false, reason: "missing signature" };
  const timestamp = Number(timestampHeader);
  if (!Number.isSafeInteger(timestamp)) return { ok: false, reason: "bad timestamp" };
  if (Math.abs(now - timestamp) > REPLAY_WINDOW_MS) return { ok: false, reason: "stale timestamp" };
  if (signatureHeader.startsWith("v1=")) return { ok: false, reason: "signature scheme v1 is outdated: update the bridge" };
  const mac = signatureHeader.startsWith(SCHEME) ? fromHex(signatureHeader.slice(SCHEME.length)) : null;
  if (!mac || mac.length !== 32) return { ok: false, reason: "malformed signature" };
  return { ok: true, timestamp, mac };
}

/** Whether the signature read from the headers covers this request; compared in constant time. */
export function verifySignature(secret: string, signature: { timestamp: number; mac: Uint8Array }, request: SignedRequest): Promise<boolean> {
  return hmacMatches(secret, signature.mac, signedMessage(signature.timestamp, request));
}
