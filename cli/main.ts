/** The `echo-edge` command line: subcommand dispatch. */
import { runMigrate } from "./migrate.ts";

const USAGE = `Usage: echo-edge <command> [options]

Commands:
  migrate [file]   turn a laravel-echo-server.json and its environment overrides
                   into wrangler vars, worker secrets and the bridge's environment

Run "echo-edge <command> --help" for a command's options.
`;

const COMMANDS: Record<string, (args: string[]) => number> = { migrate: runMigrate };

/** Runs the command line; returns the process exit code. */
export function main(args: string[]): number {
  const [command, ...rest] = args;
  if (command === undefined) {
    process.stderr.write(USAGE);
    return 1;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    process.stderr.write(`echo-edge: unknown command "${command}"\n\n${USAGE}`);
    return 1;
  }
  return run(rest);
}
