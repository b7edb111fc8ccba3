/** Random ids for Engine.IO sessions and Socket.IO sockets (20 url-safe chars, like engine.io's). */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(15));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_");
}

/** Whether a client-supplied sid could be one of ours; others are refused without waking a Durable Object. */
export function isWellFormedId(id: string): boolean {
  return /^[\w-]{20}$/.test(id);
}
