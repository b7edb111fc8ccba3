/** The router: each group of routes lives in its own module under routes/. */
import { Hono } from "hono";
import type { Env } from "./config.ts";
import { apiRoutes } from "./routes/api.ts";
import { apiCors } from "./routes/cors.ts";
import { publishRoutes } from "./routes/publish.ts";
import { socketIoRoutes } from "./routes/socketio.ts";
import { statsRoutes } from "./routes/stats.ts";

export const app = new Hono<{ Bindings: Env }>();

// laravel-echo-server answers its root with OK; health checks rely on it.
app.get("/", (c) => c.text("OK"));
// Before the routes, so every API answer (403 and 404 included) carries CORS headers.
app.use("/apps/*", apiCors);
app.use("/stats", apiCors);
app.route("/", socketIoRoutes);
app.route("/", publishRoutes);
app.route("/", apiRoutes);
app.route("/", statsRoutes);
