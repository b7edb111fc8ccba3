/**
 * One-line logs on stderr. journald and container runtimes add their own
 * timestamps, but a bridge run by hand or piped to a file should still say when.
 */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

function line(level: string, message: string): void {
  process.stderr.write(`${new Date().toISOString()} bridge ${level}: ${message}\n`);
}

export const stderrLogger: Logger = {
  info: (message) => line("info", message),
  warn: (message) => line("warn", message),
  error: (message) => line("error", message),
};

/** True for 1, 10, 100, ...: repeated problems are logged with their count, not once per message. */
export function isPowerOfTen(count: number): boolean {
  while (count >= 10 && count % 10 === 0) count /= 10;
  return count === 1;
}
