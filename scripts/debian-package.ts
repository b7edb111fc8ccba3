/**
 * Installs a Debian package when a command the project runs is missing, so that a
 * fresh Debian or Ubuntu machine needs nothing done by hand (Redis for `npm start`,
 * the tests and the bench; Chromium for the dashboard test). apt-get runs through
 * sudo unless we are root.
 */
import { execFileSync, spawnSync } from "node:child_process";

/** Whether `command` (a name looked up on PATH, or an absolute path) can be run. */
export function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", 'command -v "$1"', "sh", command], { stdio: "ignore" }).status === 0;
}

/** The package lists are refreshed once per process, however many packages it installs. */
let listsUpdated = false;

/** Makes sure `command` exists, installing Debian's `debianPackage` when it does not. */
export function ensureCommand(command: string, debianPackage: string, log: (line: string) => void = console.log): void {
  if (hasCommand(command)) return;
  const asRoot = process.getuid?.() === 0;
  if (!hasCommand("apt-get") || (!asRoot && !hasCommand("sudo"))) {
    throw new Error(
      `${command} is missing; install Debian's ${debianPackage} package (or your system's equivalent), ` +
        "or run this where apt-get can (as root or with sudo)",
    );
  }
  log(`${command} not found: installing Debian's ${debianPackage} package`);
  // sudo resets the environment, so the non-interactive frontend is passed through env.
  const aptGet = (...args: string[]) => {
    const argv = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", ...args];
    execFileSync(asRoot ? argv[0]! : "sudo", asRoot ? argv.slice(1) : argv, { stdio: "inherit" });
  };
  if (!listsUpdated) {
    aptGet("update", "-qq");
    listsUpdated = true;
  }
  aptGet("install", "-y", "-qq", debianPackage);
  if (!hasCommand(command)) throw new Error(`installed Debian's ${debianPackage} package, but ${command} is still missing`);
}
