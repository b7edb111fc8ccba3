/** Worker entry: the Hono router plus the Durable Object classes wrangler binds. */
import { app } from "./app.ts";

export default app;
export { AppObject } from "../durable-objects/app.ts";
export { ChannelObject } from "../durable-objects/channel.ts";
export { PollingSessionObject } from "../durable-objects/polling-session.ts";
