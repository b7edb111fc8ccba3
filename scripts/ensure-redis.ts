/**
 * Makes sure a Redis server answers on 127.0.0.1:6379, installing Debian's
 * redis-server when the machine has none. Used by `npm start`, the test setup and
 * the bench, so a fresh machine needs nothing done by hand.
 */
import { execFileSync } from "node:child_process";
import { connect } from "node:net";
import { ensureCommand } from "./debian-package.ts";

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

export async function ensureRedis(log: (line: string) => void = console.log): Promise<void> {
  if (await redisAnswers()) return;
  ensureCommand("redis-server", "redis-server", log);
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
