/** Thrown by the protocol codec for any malformed input; callers answer it with a 400 or by closing the transport. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
}
