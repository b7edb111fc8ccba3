import { Hono } from "hono";
import { DurableObject } from "cloudflare:workers";

const app = new Hono();
app.get("/", (c) => c.text("OK"));
export default app;

export class ChannelObject extends DurableObject {}
export class PollingSessionObject extends DurableObject {}
export class AppObject extends DurableObject {}
