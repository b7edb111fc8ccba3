/** Configuration the shared test worker runs with (short timers keep tests quick). */
/** `secret` lets Laravel's pusher broadcaster (the `pusher` SDK in tests) publish to this app; "other-app" has none. */
export const TEST_APP = { appId: "app", key: "secret-key", secret: "app-secret" };
export const BRIDGE_SECRET = "bridge-secret";
/** Connected to by api-compat.test.ts alone, so its `/status` counts are exact. */
export const API_APP = { appId: "api-app", key: "api-key" };

export const TEST_VARS: Record<string, string> = {
  CLIENTS: JSON.stringify([TEST_APP, { appId: "other-app", key: "other-key" }, API_APP]),
  BRIDGE_SECRET,
  PING_INTERVAL: "300",
  PING_TIMEOUT: "2000",
  UPGRADE_GRACE: "1500",
  PRESENCE_LEAVE_GRACE: "400",
  AUTH_TIMEOUT: "1500",
  MAX_PAYLOAD: "100000",
  DEV_MODE: "true",
  ALLOW_ORIGIN: "https://app.example.com,https://admin.example.com",
};
