/**
 * The local edge: the worker that `wrangler.toml` describes, bundled and run on
 * workerd by miniflare directly. `wrangler dev` puts an entry proxy (a second
 * workerd process) in front of the worker that forwards every WebSocket frame,
 * ~21 µs per delivery and two descriptors per connection that production never
 * pays (DESIGN.md, measured); here clients reach the runtime itself.
 *
 * Like Cloudflare, which runs Workers and Durable Objects on different machines,
 * the local edge runs two workerd processes joined by miniflare's dev registry: one
 * workerd runs everything on one thread, two use both cores of a small machine. The
 * Worker tier routes and holds the objects clients talk to directly (connection
 * hosts and polling sessions), so no client frame crosses processes; the Durable
 * Object tier holds channels, apps and Upstash subscribers, and reaches hosts and
 * polling objects once per delivery.
 *
 * Used by `npm start`, the end-to-end tests and the bench; `npm run worker`
 * keeps `wrangler dev` for hot reload while developing.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const ROOT = resolve(import.meta.dirname, "..");
const WORKER_NAME = "echo-edge";
const OBJECTS_NAME = "echo-edge-objects";
/** Classes that hold client connections: they run in the Worker tier, every other class in the object tier. */
const CLIENT_FACING_CLASSES = new Set(["ConnectionHostObject", "PollingSessionObject"]);

export interface LocalEdgeOptions {
  /** Worker configuration, as `[vars]` and secrets would give it. */
  vars: Record<string, string>;
  /** 0 (the default) takes a free port. */
  port?: number;
  host?: string;
  /** Durable Object storage survives a restart when given; otherwise it lives in a temporary directory. */
  persistTo?: string;
  /** Directory holding `wrangler.toml` and the sources (tests run from a snapshot). */
  root?: string;
  /** Every line the runtime logs (the worker's console included). */
  onLog?(line: string): void;
  /** Opens the Worker tier's inspector on this port (the bench profiles the isolate through it). */
  inspectorPort?: number;
  /** 2 (the default): Worker tier and Durable Object tier in separate processes; 1: both in one. */
  tiers?: 1 | 2;
}

export interface LocalEdge {
  url: string;
  port: number;
  /** The bundle workerd runs, to map profiled lines back to modules. */
  bundlePath: string;
  /** The workerd processes: the Worker tier's first. */
  runtimes: Miniflare[];
  stop(): Promise<void>;
}

/** Options wrangler derives from wrangler.toml that miniflare's converter takes as they are. */
function workerOptionsFrom(root: string) {
  const { workerOptions, define, main } = unstable_getMiniflareWorkerOptions(join(root, "wrangler.toml"));
  if (!main) throw new Error("wrangler.toml names no main module");
  // modulesRules only matter to wrangler's own bundling, which esbuild does here.
  const { modulesRules: _rules, rootPath: _root, ...rest } = workerOptions;
  const options = Object.fromEntries(
    Object.entries(rest).filter(([, value]) => value !== undefined && !(Array.isArray(value) && value.length === 0)),
  );
  return { options, define, main: resolve(root, main) };
}

export async function startLocalEdge(edge: LocalEdgeOptions): Promise<LocalEdge> {
  const root = edge.root ?? ROOT;
  const { options, define, main } = workerOptionsFrom(root);
  const work = mkdtempSync(join(tmpdir(), "echo-edge-local-"));
  const outdir = join(work, "bundle");
  await build({
    entryPoints: [main],
    outfile: join(outdir, "index.js"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2023",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*", "node:*"],
    define,
    logLevel: "warning",
  });
  const log = edge.onLog ?? ((line: string) => console.log(line));
  const bundle = { modules: true, modulesRoot: outdir, scriptPath: join(outdir, "index.js") };
  const bindings = { ...(options.bindings as Record<string, unknown> | undefined), ...edge.vars };
  const runtime = (shared: Record<string, unknown>, worker: Record<string, unknown>) =>
    new Miniflare(
      convertV4MiniflareOptions({
        host: edge.host ?? "127.0.0.1",
        handleStructuredLogs: ({ message }: { message: string }) => log(message),
        ...shared,
        workers: [{ ...options, ...bundle, bindings, ...worker }],
      } as Parameters<typeof convertV4MiniflareOptions>[0]),
    );
  const state = edge.persistTo ?? join(work, "state");
  const front = { port: edge.port ?? 0, inspectorPort: edge.inspectorPort };
  const runtimes: Miniflare[] = [];
  try {
    if ((edge.tiers ?? 2) === 1) {
      runtimes.push(runtime({ ...front, resourcePersistencePath: state }, { name: WORKER_NAME }));
    } else {
      const registry = { unsafeDevRegistryPath: join(work, "registry") };
      // Each tier owns its classes and reaches the other tier's through the registry.
      const bindingsFor = (clientFacing: boolean) =>
        Object.fromEntries(
          Object.entries(options.durableObjects as Record<string, { className: string }>).map(([binding, object]) => [
            binding,
            CLIENT_FACING_CLASSES.has(object.className) === clientFacing
              ? object
              : { ...object, scriptName: clientFacing ? OBJECTS_NAME : WORKER_NAME },
          ]),
        );
      const objects = runtime(
        { port: 0, resourcePersistencePath: join(state, "objects"), ...registry },
        { name: OBJECTS_NAME, durableObjects: bindingsFor(false), cronTriggers: undefined },
      );
      runtimes.push(objects);
      await objects.ready;
      runtimes.unshift(
        runtime(
          { ...front, resourcePersistencePath: join(state, "worker"), ...registry },
          { name: WORKER_NAME, durableObjects: bindingsFor(true), queueConsumers: undefined },
        ),
      );
    }
    const url = await runtimes[0]!.ready;
    return {
      url: url.origin,
      port: Number(url.port),
      bundlePath: bundle.scriptPath,
      runtimes,
      async stop() {
        await Promise.all(runtimes.map((mf) => mf.dispose()));
        rmSync(work, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(runtimes.map((mf) => mf.dispose().catch(() => {})));
    rmSync(work, { recursive: true, force: true });
    throw error;
  }
}
