/**
 * Makes sure Chromium is at /usr/bin/chromium, where the dashboard test
 * (test/e2e/stats.test.ts, through playwright-core, which brings no browser of its
 * own) launches it, installing Debian's chromium package when it is missing. Used
 * by the test setup, so `npm install && npm test` works on a fresh machine.
 */
import { ensureCommand } from "./debian-package.ts";

export const CHROMIUM_PATH = "/usr/bin/chromium";

export function ensureChromium(log: (line: string) => void = console.log): void {
  ensureCommand(CHROMIUM_PATH, "chromium", log);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureChromium();
  console.log(`chromium is at ${CHROMIUM_PATH}`);
}
