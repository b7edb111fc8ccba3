// socket.io-client 2 ships no types; tests use it through the small surface below.
declare module "socket.io-client-v2" {
  const io: (url: string, options?: Record<string, unknown>) => import("./clients.ts").AnySocket;
  export default io;
}
