/**
 * Laravel publishes every broadcast to `<REDIS_PREFIX><channel>`; both Redis readers
 * (the bridge's PSUBSCRIBE and the Upstash subscriber object) subscribe with this
 * pattern. Pure, so the Node bridge imports it too.
 */

/** `PSUBSCRIBE` takes a glob: a prefix with `*`, `?`, `[` or `\` in it must match literally. */
export function prefixPattern(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, "\\$&") + "*";
}
