/**
 * Runs the real worker under `wrangler dev` (workerd) for end-to-end tests, with
 * its configuration passed as `--var`, exactly as `npm start` does.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export interface RunningWorker {
  url: string;
  port: number;
  /** Everything wrangler and the worker printed so far (console.log lines included). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * wrangler dev reloads (dropping every connection) when a source file changes;
 * running from a snapshot of the sources keeps a test run immune to edits made
 * while it runs.
 */
function snapshotSources(): string {
  const dir = mkdtempSync(join(tmpdir(), "echo-edge-src-"));
  for (const entry of ["worker", "durable-objects", "wrangler.toml", "package.json", "tsconfig.json"]) {
    cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return dir;
}

export async function startWorker(vars: Record<string, string>, port?: number): Promise<RunningWorker> {
  try {
    return await launchWorker(vars, port);
  } catch (error) {
    // Ports come from freePort() and can be taken by another process before
    // wrangler binds them; one more try with fresh ports settles that race.
    if (!(error instanceof EarlyExit)) throw error;
    return launchWorker(vars, port);
  }
}

class EarlyExit extends Error {}

async function launchWorker(vars: Record<string, string>, port?: number): Promise<RunningWorker> {
  const listenPort = port ?? (await freePort());
  const sources = snapshotSources();
  const persistDir = join(sources, ".state");
  const args = [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(listenPort),
    "--persist-to",
    persistDir,
    "--inspector-port",
    String(await freePort()),
    "--show-interactive-dev-session=false",
    "--log-level",
    "log",
  ];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  const child: ChildProcess = spawn(join(ROOT, "node_modules/.bin/wrangler"), args, {
    cwd: sources,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const url = `http://127.0.0.1:${listenPort}`;
  const deadline = Date.now() + 60_000;
  while (true) {
    if (child.exitCode !== null) {
      rmSync(sources, { recursive: true, force: true });
      throw new EarlyExit(`wrangler dev exited early:\n${output}`);
    }
    try {
      const res = await fetch(url + "/");
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`wrangler dev did not answer within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    port: listenPort,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(sources, { recursive: true, force: true });
    },
  };
}
