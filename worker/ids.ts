/**
 * Engine.IO sids and Socket.IO socket ids in Pusher's socket id form, `<digits>.<digits>`:
 * pusher-php-server and the npm `pusher` SDK refuse any other `socket_id`, so Laravel's
 * `toOthers()` through its pusher broadcaster needs it. Two random unsigned 64-bit
 * integers keep an id as unguessable as engine.io's (~128 bits).
 */
export function randomId(): string {
  const [high, low] = crypto.getRandomValues(new BigUint64Array(2));
  return `${high}.${low}`;
}

// An unsigned 64-bit integer has at most 20 decimal digits.
const WELL_FORMED_ID = /^\d{1,20}\.\d{1,20}$/;

/** Whether a client-supplied sid or socket id could be one of ours; others are refused without waking a Durable Object. */
export function isWellFormedId(id: string): boolean {
  return WELL_FORMED_ID.test(id);
}
