/**
 * `body`, read on demand, that stops reading (cancels `body`) and errors with `tooLarge()` once
 * more than `limit` bytes arrive in all, or, for an event stream, in one event (what an SSE parser
 * holds before the blank line that ends it).
 */
export function boundedBody(body: ReadableStream<Uint8Array>, eventStream: boolean, limit: number, tooLarge: () => Error): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  const size = eventStream ? new EventSize() : new TotalSize();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      if (size.exceeds(value, limit)) {
        controller.error(tooLarge());
        await reader.cancel().catch(() => undefined);
        return;
      }
      controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

interface SizeRule {
  /** Counts `chunk`; true once the size counted is over `limit`. */
  exceeds(chunk: Uint8Array, limit: number): boolean;
}

class TotalSize implements SizeRule {
  private bytes = 0;

  exceeds(chunk: Uint8Array, limit: number): boolean {
    this.bytes += chunk.length;
    return this.bytes > limit;
  }
}

const LF = 0x0a;
const CR = 0x0d;

/** The bytes of the current event of an event stream: an empty line (after LF, CR or CRLF) ends an event. */
class EventSize implements SizeRule {
  private bytes = 0;
  private lineEmpty = true;
  private afterCr = false;

  exceeds(chunk: Uint8Array, limit: number): boolean {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === LF && this.afterCr) {
        this.afterCr = false; // the LF of a CRLF: the line already ended at its CR
        continue;
      }
      this.afterCr = byte === CR;
      if (byte === LF || byte === CR) {
        if (this.lineEmpty) this.bytes = 0;
        this.lineEmpty = true;
        continue;
      }
      this.lineEmpty = false;
      if (++this.bytes > limit) return true;
    }
    return false;
  }
}
