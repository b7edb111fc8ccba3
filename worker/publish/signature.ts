/**
 * Signing of bridge publishes. Pure WebCrypto, so the worker (verify) and the Node
 * bridge (sign) share this one module.
 *
 * The signature is HMAC-SHA256 over `${timestamp}.${body}`, hex encoded, sent as
 * `X-Echo-Signature: v1=<hex>` with `X-Echo-Timestamp: <unix ms>`. Binding the
 * timestamp into the MAC lets the worker refuse replays outside a short window.
 */
export const SIGNATURE_HEADER = "x-echo-signature";
export const TIMESTAMP_HEADER = "x-echo-timestamp";
export const REPLAY_WINDOW_MS = 5 * 60 * 1000;

const encoder = new TextEncoder();
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = keyCache.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    keyCache.set(secret, key);
  }
  return key;
}

function toHex(bytes: ArrayBuffer): string {
  let out = "";
  for (const b of new Uint8Array(bytes)) out += b.toString(16).padStart(2, "0");
  return out;
}

function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export async function sign(secret: string, timestamp: number, body: string): Promise<string> {
  const mac = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(`${timestamp}.${body}`));
  return `v1=${toHex(mac)}`;
}

/** Headers to attach to a signed publish request. */
export async function signatureHeaders(secret: string, body: string, now = Date.now()): Promise<Record<string, string>> {
  return { [TIMESTAMP_HEADER]: String(now), [SIGNATURE_HEADER]: await sign(secret, now, body) };
}

export type VerifyResult = { ok: true } | { ok: false; reason: string };

/** Checks a signed request; `crypto.subtle.verify` compares in constant time. */
export async function verify(
  secret: string,
  timestampHeader: string | null | undefined,
  signatureHeader: string | null | undefined,
  body: string,
  now = Date.now(),
): Promise<VerifyResult> {
  if (!timestampHeader || !signatureHeader) return { ok: false, reason: "missing signature" };
  const timestamp = Number(timestampHeader);
  if (!Number.isSafeInteger(timestamp)) return { ok: false, reason: "bad timestamp" };
  if (Math.abs(now - timestamp) > REPLAY_WINDOW_MS) return { ok: false, reason: "stale timestamp" };
  const mac = signatureHeader.startsWith("v1=") ? fromHex(signatureHeader.slice(3)) : null;
  if (!mac || mac.length !== 32) return { ok: false, reason: "malformed signature" };
  const valid = await crypto.subtle.verify(
    "HMAC",
    await hmacKey(secret),
    mac,
    encoder.encode(`${timestamp}.${body}`),
  );
  return valid ? { ok: true } : { ok: false, reason: "bad signature" };
}
