/**
 * `npm start`: the worker on workerd (the local edge, no proxy in front) on
 * 127.0.0.1:$PORT (default 6001, laravel-echo-server's port) plus the bridge on
 * local Redis. `npm run worker` (`--dev`): the worker alone under `wrangler dev`,
 * which reloads on every source change.
 *
 * Worker configuration comes from the environment; anything unset falls back to
 * .dev.vars, then wrangler.toml.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { ensureRedis } from "./ensure-redis.ts";
import { startLocalEdge } from "./local-edge.ts";
import { WORKER_VARIABLES } from "../worker/config.ts";

const ROOT = resolve(import.meta.dirname, "..");

const devMode = process.argv.includes("--dev");
const port = process.env.PORT ?? "6001";

/** Values from .dev.vars count as set, so local defaults below never override them. */
function devVars(): Record<string, string> {
  const file = resolve(ROOT, ".dev.vars");
  if (!existsSync(file)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) vars[match[1]!] = match[2]!.replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

const fromDevVars = devVars();
const configured = { ...fromDevVars, ...process.env };
const vars: Record<string, string> = {};
for (const name of WORKER_VARIABLES) if (process.env[name] !== undefined) vars[name] = process.env[name]!;

// Local conveniences, announced so nobody mistakes them for production settings.
if (!configured.BRIDGE_SECRET) {
  vars.BRIDGE_SECRET = randomBytes(32).toString("hex");
  console.log("[start] BRIDGE_SECRET not set: using a random one shared by the worker and bridge for this run");
}
if (!configured.CLIENTS) {
  vars.CLIENTS = JSON.stringify([{ appId: "app", key: "local-dev-key" }]);
  console.log('[start] CLIENTS not set: API app "app" with key "local-dev-key"');
}
if (!configured.AUTH_HOST) {
  vars.AUTH_HOST = "http://127.0.0.1:8000";
  console.log("[start] AUTH_HOST not set: private/presence auth goes to http://127.0.0.1:8000 (php artisan serve)");
}

const children: ChildProcess[] = [];
function run(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): void {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: "inherit" });
  child.on("exit", (code, signal) => {
    console.log(`[start] ${name} exited (${signal ?? code}); stopping`);
    shutdown(code ?? 1);
  });
  children.push(child);
}

/** Runs on shutdown next to stopping the child processes (the local edge stops its runtime). */
const stopHooks: (() => Promise<void>)[] = [];

let stopping = false;
function shutdown(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  setTimeout(() => process.exit(code), 5000).unref();
  const exited = children.map((c) => (c.exitCode === null ? new Promise((r) => c.once("exit", r)) : null));
  Promise.all([...exited, ...stopHooks.map((stop) => stop())]).then(() => process.exit(code));
}
process.on("SIGINT", () => shutdown(0));
process.on("SIGTERM", () => shutdown(0));

if (devMode) {
  // wrangler dev reads .dev.vars itself; --var carries the rest.
  const wranglerArgs = ["dev", "--ip", "127.0.0.1", "--port", port, "--show-interactive-dev-session=false"];
  for (const [name, value] of Object.entries(vars)) wranglerArgs.push("--var", `${name}:${value}`);
  run("worker", resolve(ROOT, "node_modules/.bin/wrangler"), wranglerArgs, process.env);
} else {
  const edge = await startLocalEdge({
    port: Number(port),
    vars: { ...fromDevVars, ...vars },
    persistTo: resolve(ROOT, ".wrangler/state/local-edge"),
  });
  console.log(`[start] worker on workerd at ${edge.url}`);
  stopHooks.push(() => edge.stop());
  await ensureRedis((line) => console.log(`[start] ${line}`));
  // The bridge shares the worker's secret and CLIENTS (it publishes as their first app unless APP_ID says otherwise).
  run("bridge", process.execPath, [resolve(ROOT, "bridge/main.ts")], {
    ...process.env,
    ECHO_URL: process.env.ECHO_URL ?? edge.url,
    BRIDGE_SECRET: vars.BRIDGE_SECRET ?? configured.BRIDGE_SECRET,
    CLIENTS: vars.CLIENTS ?? configured.CLIENTS,
  });
}
