/**
 * Makes sure a Redis server answers on 127.0.0.1:6379, installing Debian's
 * redis-server when the machine has none. Used by `.ci/run`, `npm start` and the
 * test setup, so a fresh machine needs nothing done by hand.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { connect } from "node:net";

export const REDIS_HOST = "127.0.0.1";
export const REDIS_PORT = 6379;

export function redisAnswers(host = REDIS_HOST, port = REDIS_PORT, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

export async function ensureRedis(log: (line: string) => void = console.log): Promise<void> {
  if (await redisAnswers()) return;
  if (!hasCommand("redis-server")) {
    log("redis-server not found: installing Debian's redis-server package");
    const sudo = process.getuid?.() === 0 ? [] : ["sudo"];
    const run = (args: string[]) =>
      execFileSync(sudo.length ? "sudo" : args[0]!, sudo.length ? args : args.slice(1), {
        stdio: "inherit",
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    run(["apt-get", "update", "-qq"]);
    run(["apt-get", "install", "-y", "-qq", "redis-server"]);
  }
  log(`starting redis-server on ${REDIS_HOST}:${REDIS_PORT}`);
  execFileSync(
    "redis-server",
    ["--bind", REDIS_HOST, "--port", String(REDIS_PORT), "--save", "", "--appendonly", "no", "--daemonize", "yes"],
    { stdio: "inherit" },
  );
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`redis-server did not answer on ${REDIS_HOST}:${REDIS_PORT}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await ensureRedis();
  console.log("redis is answering on 127.0.0.1:6379");
}
