/**
 * WebCrypto helpers shared by every signed or keyed way in: the bridge's batch
 * signature (also imported by the Node bridge, so nothing here may need workerd at
 * load time), Pusher request signatures and API key checks.
 */
const encoder = new TextEncoder();
const hmacKeys = new Map<string, Promise<CryptoKey>>();

/** An HMAC-SHA256 key for `secret`, imported once per isolate (secrets come from configuration only). */
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
    hmacKeys.set(secret, key);
  }
  return key;
}

function toHex(bytes: ArrayBuffer): string {
  let out = "";
  for (const b of new Uint8Array(bytes)) out += b.toString(16).padStart(2, "0");
  return out;
}

export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Text and bytes joined as one message to sign (a request's head, then its raw body). */
export function signedBytes(head: string, body: string | Uint8Array = ""): Uint8Array {
  const headBytes = encoder.encode(head);
  const bodyBytes = typeof body === "string" ? encoder.encode(body) : body;
  const out = new Uint8Array(headBytes.byteLength + bodyBytes.byteLength);
  out.set(headBytes, 0);
  out.set(bodyBytes, headBytes.byteLength);
  return out;
}

/** Hex HMAC-SHA256 of `data` with `secret`. */
export async function hmacHex(secret: string, data: string | Uint8Array): Promise<string> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return toHex(await crypto.subtle.sign("HMAC", await hmacKey(secret), bytes));
}

/** Whether `mac` is the HMAC-SHA256 of `data` with `secret`; `crypto.subtle.verify` compares in constant time. */
export async function hmacMatches(secret: string, mac: Uint8Array, data: string | Uint8Array): Promise<boolean> {
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  return crypto.subtle.verify("HMAC", await hmacKey(secret), mac, bytes);
}

/**
 * Whether a key a caller sent equals a configured one, in time that depends on
 * neither: both are hashed to 32 bytes first (so lengths do not show either), then
 * compared with workerd's `crypto.subtle.timingSafeEqual`.
 */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", encoder.encode(given)),
    crypto.subtle.digest("SHA-256", encoder.encode(expected)),
  ]);
  return crypto.subtle.timingSafeEqual(a, b);
}

/** Hex MD5 of a body, as Pusher's `body_md5` (workerd's WebCrypto supports MD5 digests). */
export async function md5Hex(bytes: Uint8Array): Promise<string> {
  return toHex(await crypto.subtle.digest("MD5", bytes));
}
