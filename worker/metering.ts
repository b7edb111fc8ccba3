/**
 * Durable Object request metering for the bench (`npm run bench:requests`): with
 * METER_REQUESTS=true every entry point a Durable Object serves logs one line,
 * `{"level":"info","event":"do_request","object":…,"entry":…}`, which is what
 * Cloudflare bills as requests (each fetch, RPC call and alarm; incoming WebSocket
 * messages at 1 per 20).
 *
 * Entry points are listed per class rather than found by reflection: TypeScript's
 * private methods are ordinary prototype methods at runtime, and a call one method
 * makes to another with `this.x()` is no request (no class calls its own entry
 * points, which would count).
 */
import type { DurableObject } from "cloudflare:workers";
import type { Env } from "./config.ts";

export type DurableObjectClass<Instance extends DurableObject<Env>> = new (ctx: DurableObjectState, env: Env) => Instance;

/** The public methods of a Durable Object (private and protected members are not keys of its type). */
export type EntryPoint<Instance> = {
  [Name in keyof Instance]: Instance[Name] extends (...args: never[]) => unknown ? Name : never;
}[keyof Instance] &
  string;

/** Read once per instance, so an entry point of an unmetered object costs one property check. */
const METERING = Symbol("metering");

/**
 * A subclass of `base` (so still a DurableObject, as workerd requires) whose listed
 * entry points log a `do_request` line when METER_REQUESTS is "true", then run the
 * base implementation. `object` names it in the line: bundlers may rename classes.
 */
export function metered<Instance extends DurableObject<Env>>(
  object: string,
  base: DurableObjectClass<Instance>,
  entries: readonly EntryPoint<Instance>[],
): DurableObjectClass<Instance> {
  class Metered extends (base as DurableObjectClass<DurableObject<Env>>) {
    readonly [METERING]: boolean;

    constructor(ctx: DurableObjectState, env: Env) {
      super(ctx, env);
      this[METERING] = env.METER_REQUESTS === "true";
    }
  }
  for (const entry of entries) {
    const implementation: unknown = base.prototype[entry];
    // An entry point the base lacks would make workerd believe the class handles it (an alarm, a WebSocket event).
    if (typeof implementation !== "function") throw new Error(`${object}.${entry} is not a method`);
    const line = JSON.stringify({ level: "info", event: "do_request", object, entry });
    Object.defineProperty(Metered.prototype, entry, {
      value: function (this: Metered, ...args: unknown[]): unknown {
        if (this[METERING]) console.log(line);
        return implementation.apply(this, args);
      },
      writable: true,
      configurable: true,
    });
  }
  return Metered as unknown as DurableObjectClass<Instance>;
}
