/** Configuration the shared test worker runs with (short timers keep tests quick). */
export const TEST_APP = { appId: "app", key: "secret-key" };
export const BRIDGE_SECRET = "bridge-secret";

export const TEST_VARS: Record<string, string> = {
  CLIENTS: JSON.stringify([TEST_APP, { appId: "other-app", key: "other-key" }]),
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
