/**
 * Runs the real worker for end-to-end tests on workerd, exactly as `npm start`
 * serves it (scripts/local-edge.ts: the Worker tier and the Durable Object tier in
 * their own processes), with the configuration given as vars.
 */
import { createServer } from "node:net";
import { startLocalEdge } from "../../scripts/local-edge.ts";

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
  /** Every line the runtime logged so far (the worker's console.log lines included). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * The sources are bundled once at start, so edits made while tests run do not reach a running worker.
 * `port` and `persistTo` let a test stop a worker and start it again where it was, storage kept (a deploy).
 */
export async function startWorker(vars: Record<string, string>, at: { port?: number; persistTo?: string } = {}): Promise<RunningWorker> {
  let output = "";
  const edge = await startLocalEdge({ vars, ...at, onLog: (line) => (output += line + "\n") });
  return { url: edge.url, port: edge.port, output: () => output, stop: () => edge.stop() };
}
