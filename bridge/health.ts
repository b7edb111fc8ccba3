/**
 * `/health` (JSON) and `/metrics` (Prometheus text format) for the bridge.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { BridgeStats } from "./bridge.ts";
import { WORKER_STATES } from "./forwarder.ts";

/** Healthy means subscribed to Redis and not failing to deliver to the worker. */
function isHealthy(stats: BridgeStats): boolean {
  return stats.redis.state === "subscribed" && (stats.worker.state === "ok" || stats.worker.state === "unknown");
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase());
}

function renderMetrics(stats: BridgeStats): string {
  const lines: string[] = [];
  const metric = (name: string, type: "counter" | "gauge", help: string, samples: [string, number][]) => {
    lines.push(`# HELP echo_bridge_${name} ${help}`, `# TYPE echo_bridge_${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`echo_bridge_${name}${labels} ${value}`);
  };
  const byLabel = (label: string, counts: Record<string, number>): [string, number][] =>
    Object.entries(counts).map(([key, value]) => [`{${label}="${snakeCase(key)}"}`, value]);
  const { messages, buffer, redis, worker } = stats;

  metric("messages_received_total", "counter", "Publishes received on the Redis pattern.", [["", messages.received]]);
  metric("messages_forwarded_total", "counter", "Messages the worker accepted.", [["", messages.forwarded]]);
  metric("messages_invalid_total", "counter", "Publishes refused on arrival, by reason.", byLabel("reason", messages.invalid));
  metric("messages_dropped_total", "counter", "Accepted messages given up, by reason.", byLabel("reason", messages.dropped));
  metric("buffer_messages", "gauge", "Messages held for the worker.", [["", buffer.messages]]);
  metric("buffer_bytes", "gauge", "Characters of JSON held for the worker.", [["", buffer.bytes]]);
  metric("publish_requests_total", "counter", "Publish requests to the worker, by outcome.", byLabel("outcome", stats.requests));
  metric("redis_subscribed", "gauge", "1 while subscribed to the Redis pattern.", [["", redis.state === "subscribed" ? 1 : 0]]);
  metric("redis_reconnects_total", "counter", "Resubscriptions after a lost Redis connection.", [["", redis.reconnects]]);
  metric(
    "worker_state",
    "gauge",
    "1 for the current state of the worker as seen by the last publish.",
    WORKER_STATES.map((state) => [`{state="${state}"}`, worker.state === state ? 1 : 0]),
  );
  metric("uptime_seconds", "gauge", "Seconds since the bridge started.", [["", stats.uptimeSeconds]]);
  return lines.join("\n") + "\n";
}

export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

export function startHealthServer(host: string, port: number, stats: () => BridgeStats): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
    } else if (path === "/health") {
      const current = stats();
      const healthy = isHealthy(current);
      res
        .writeHead(healthy ? 200 : 503, { "content-type": "application/json" })
        .end(JSON.stringify({ status: healthy ? "ok" : "degraded", ...current }, null, 2));
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(renderMetrics(stats()));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /health or /metrics\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address() as AddressInfo;
      resolve({
        url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
