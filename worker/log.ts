/**
 * Structured logs: one JSON object per line, readable in `wrangler tail`.
 * `debug` lines only appear with DEV_MODE; warnings and errors always do.
 */
export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
}

export function createLogger(devMode: boolean): Logger {
  return {
    debug: devMode ? (event, fields) => console.log(JSON.stringify({ level: "debug", event, ...fields })) : () => {},
    warn: (event, fields) => console.warn(JSON.stringify({ level: "warn", event, ...fields })),
  };
}
