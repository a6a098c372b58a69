import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deleteEntry, writeTextFile } from './fs-tools';
import { Workspace } from './workspace';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * One turn of the event loop that first blocks for 20 ms, long enough for the file operation in
 * flight to finish: each turn moves a tool on by one step, so aborting after n turns aborts it at step n.
 */
const blockingTurn = () =>
  new Promise<void>((resolve) =>
    setImmediate(() => {
      Atomics.wait(sleeper, 0, 0, 20);
      resolve();
    }),
  );

/**
 * Starts `run` with a signal, aborts it after 0, 1, 2… turns (as the executor's timeout would), until
 * `run` finishes before the abort; `check` gets what each abandoned run did.
 */
async function abortAtEachStep(run: (signal: AbortSignal) => Promise<unknown>, check: (outcome: PromiseSettledResult<unknown>) => void) {
  for (let turns = 0; ; turns++) {
    const controller = new AbortController();
    let finished = false;
    const running = run(controller.signal).finally(() => (finished = true));
    for (let i = 0; i < turns; i++) await blockingTurn();
    if (finished) return turns;
    controller.abort();
    const [outcome] = await Promise.allSettled([running]);
    check(outcome);
  }
}

describe('file tools abandoned at their timeout (the call was answered 504 tool_timeout)', () => {
  let root: string;
  let ws: Workspace;
  beforeEach(() => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'fs-tools-spec-')));
    ws = new Workspace(root);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('never lands a write, whichever step it had reached', async () => {
    writeFileSync(join(root, 'note.txt'), 'old');
    const steps = await abortAtEachStep(
      (signal) => writeTextFile(ws, ws.confine('note.txt'), 'new', false, signal),
      (outcome) => {
        expect(outcome.status).toBe('rejected');
        expect(readFileSync(join(root, 'note.txt'), 'utf8')).toBe('old');
        expect(readdirSync(root)).toEqual(['note.txt']);
      },
    );
    expect(steps).toBeGreaterThan(4);
    expect(readFileSync(join(root, 'note.txt'), 'utf8')).toBe('new');
  });

  it('never deletes a file once the call has timed out', async () => {
    writeFileSync(join(root, 'keep.txt'), 'x');
    await abortAtEachStep(
      (signal) => deleteEntry(ws, ws.confineEntry('keep.txt'), signal),
      (outcome) => {
        expect(outcome.status).toBe('rejected');
        expect(existsSync(join(root, 'keep.txt'))).toBe(true);
      },
    );
    expect(existsSync(join(root, 'keep.txt'))).toBe(false);
  });
});
