/**
 * The local edge: the worker that `wrangler.toml` describes, bundled and run on
 * workerd by miniflare directly. `wrangler dev` puts an entry proxy (a second
 * workerd process) in front of the worker that forwards every WebSocket frame,
 * ~21 µs per delivery and two descriptors per connection that production never
 * pays (DESIGN.md, measured); here clients reach the runtime itself.
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
  /** Opens workerd's inspector on this port (the bench profiles the isolate through it). */
  inspectorPort?: number;
}

export interface LocalEdge {
  url: string;
  port: number;
  /** The bundle workerd runs, to map profiled lines back to modules. */
  bundlePath: string;
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
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: edge.host ?? "127.0.0.1",
      port: edge.port ?? 0,
      inspectorPort: edge.inspectorPort,
      durableObjectsPersist: edge.persistTo ?? join(work, "state"),
      handleStructuredLogs: ({ message }: { message: string }) => log(message),
      workers: [
        {
          name: "echo-edge",
          ...options,
          modules: true,
          modulesRoot: outdir,
          scriptPath: join(outdir, "index.js"),
          bindings: { ...(options.bindings as Record<string, unknown> | undefined), ...edge.vars },
        },
      ],
    } as Parameters<typeof convertV4MiniflareOptions>[0]),
  );
  const url = await mf.ready;
  return {
    url: url.origin,
    port: Number(url.port),
    bundlePath: join(outdir, "index.js"),
    async stop() {
      await mf.dispose();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
