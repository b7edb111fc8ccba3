/**
 * What holds a client's Engine.IO connection (a connection host's WebSocket, or a
 * polling session), as the engine and the session above it see it.
 */
export interface Transport {
  /**
   * The one way out: Engine.IO text frames to the client, in order. The engine's own
   * packets, the session's and a channel's ready-made `42[…]` frames all come through
   * here already encoded, as engine.io sends pre-encoded packets, so a channel frame
   * encoded once goes to every socket as it is.
   */
  send(frames: string[]): void;
  /** Ends the client's connection. */
  close(reason: string): void;
}
