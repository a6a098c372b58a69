import { boundedBody } from './bounded-body';

const LIMIT = 100;

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

/** What a reader of the bounded body gets: the text, or the error it stopped with. */
async function readAll(chunks: string[], eventStream: boolean): Promise<{ text: string } | { error: string }> {
  const reader = boundedBody(streamOf(chunks), eventStream, LIMIT, () => new Error('too large')).getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += decoder.decode(r.value);
    return { text };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

const event = (size: number, end = '\n\n') => `data: ${'x'.repeat(size - 6)}${end}`;

describe('boundedBody (what the gateway reads of an upstream MCP answer)', () => {
  it('passes a body up to the limit, and stops past it', async () => {
    expect(await readAll(['a'.repeat(60), 'b'.repeat(40)], false)).toEqual({ text: 'a'.repeat(60) + 'b'.repeat(40) });
    expect(await readAll(['a'.repeat(60), 'b'.repeat(41)], false)).toEqual({ error: 'too large' });
  });

  it('in an event stream, limits each event, not the stream', async () => {
    const many = Array.from({ length: 20 }, () => event(90));
    expect(await readAll(many, true)).toEqual({ text: many.join('') });
    for (const end of ['\r\n\r\n', '\r\r', '\n\r\n']) {
      expect(await readAll([event(90, end), event(90, end)], true)).toEqual({ text: event(90, end) + event(90, end) });
    }
  });

  it('stops at one event over the limit, also when it comes in many chunks or lines', async () => {
    expect(await readAll([event(101)], true)).toEqual({ error: 'too large' });
    expect(await readAll(['data: ', ...Array.from({ length: 30 }, () => 'xxxx')], true)).toEqual({ error: 'too large' });
    // Lines, but no blank line between them: one event.
    expect(
      await readAll(
        Array.from({ length: 20 }, () => 'data: xxxx\n'),
        true,
      ),
    ).toEqual({ error: 'too large' });
    // A CRLF is one line end, not an empty line.
    expect(
      await readAll(
        Array.from({ length: 20 }, () => 'data: xxxx\r\n'),
        true,
      ),
    ).toEqual({ error: 'too large' });
  });
});
