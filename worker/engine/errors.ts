/**
 * Engine.IO HTTP errors, with the codes and messages engine.io (and so
 * laravel-echo-server) answers, so clients and operators see familiar failures.
 */
export const EngineError = {
  UNKNOWN_TRANSPORT: { code: 0, message: "Transport unknown", status: 400 },
  UNKNOWN_SID: { code: 1, message: "Session ID unknown", status: 400 },
  BAD_HANDSHAKE_METHOD: { code: 2, message: "Bad handshake method", status: 400 },
  BAD_REQUEST: { code: 3, message: "Bad request", status: 400 },
  FORBIDDEN: { code: 4, message: "Forbidden", status: 403 },
  UNSUPPORTED_PROTOCOL_VERSION: { code: 5, message: "Unsupported protocol version", status: 400 },
} as const;

export type EngineErrorKind = (typeof EngineError)[keyof typeof EngineError];

export function engineErrorResponse(error: EngineErrorKind, headers: HeadersInit = {}, detail?: string): Response {
  const body: Record<string, unknown> = { code: error.code, message: error.message };
  if (detail) body.detail = detail;
  const response = Response.json(body, { status: error.status });
  for (const [name, value] of new Headers(headers)) response.headers.set(name, value);
  return response;
}
