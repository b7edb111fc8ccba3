/** The router: each group of routes lives in its own module under routes/. */
import { Hono } from "hono";
import type { Env } from "./config.ts";
import { publishRoutes } from "./routes/publish.ts";
import { socketIoRoutes } from "./routes/socketio.ts";

export const app = new Hono<{ Bindings: Env }>();

// laravel-echo-server answers its root with OK; health checks rely on it.
app.get("/", (c) => c.text("OK"));
app.route("/", socketIoRoutes);
app.route("/", publishRoutes);
