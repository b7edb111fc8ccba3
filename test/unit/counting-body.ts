/**
 * A request body produced on demand, one chunk per pull, counting what the reader
 * pulled: what a test uses to show how much of a body the worker read.
 */
export function countingBody(chunk: Uint8Array, totalBytes: number) {
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (pulled >= totalBytes) return controller.close();
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, pulled: () => pulled };
}
