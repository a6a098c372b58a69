import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redactor } from './redaction/redactor';
import { gatewayLogger, logFormat, requestLogger } from './logger.options';

const redactor = new Redactor(Buffer.from('spec-marker-key'));

/** The lines a gateway logger writes with LOG_FORMAT=`format`, after `log` ran. */
async function linesLogged(format: string | undefined, log: (logger: ReturnType<typeof gatewayLogger>) => Promise<void> | void): Promise<string[]> {
  const saved = { format: process.env.LOG_FORMAT, level: process.env.LOG_LEVEL };
  const lines: string[] = [];
  try {
    if (format === undefined) delete process.env.LOG_FORMAT;
    else process.env.LOG_FORMAT = format;
    process.env.LOG_LEVEL = 'info';
    await log(gatewayLogger(redactor, { write: (line: string) => void lines.push(line) }));
  } finally {
    process.env.LOG_FORMAT = saved.format;
    process.env.LOG_LEVEL = saved.level;
    if (saved.format === undefined) delete process.env.LOG_FORMAT;
    if (saved.level === undefined) delete process.env.LOG_LEVEL;
  }
  return lines;
}

const logSecrets = (logger: ReturnType<typeof gatewayLogger>) => {
  logger.info('mail from alice@example.com');
  logger.warn({ agent_id: 'agent_1', password: 'hunter2' }, 'sign-in failed');
};

/** One request through a real express app with the request-line middleware. */
async function logOneRequest(logger: ReturnType<typeof gatewayLogger>): Promise<void> {
  const app = express();
  app.use(requestLogger(logger, redactor));
  app.get('/api/approvals', (_req, res) => void res.status(403).end());
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api/approvals?who=bob@example.com`)).arrayBuffer();
  } finally {
    // Resolves once the connection is gone, so after the response's close wrote the line.
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('gatewayLogger', () => {
  it('writes human-readable lines with LOG_FORMAT=pretty, redacted like the JSON ones', async () => {
    const lines = await linesLogged('pretty', logSecrets);
    expect(lines).toEqual([
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: mail from \[REDACTED:email:[0-9a-f]+\]\n$/),
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: sign-in failed \{"agent_id":"agent_1","password":"\[REDACTED\]"\}\n$/),
    ]);
    expect(lines.join('')).not.toMatch(/hunter2|alice@/);
  });

  it('writes one JSON object a line with LOG_FORMAT=json, redacted', async () => {
    const lines = await linesLogged('json', logSecrets);
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      expect.objectContaining({ level: 30, msg: expect.stringMatching(/^mail from \[REDACTED:email:[0-9a-f]+\]$/) }),
      expect.objectContaining({ level: 40, msg: 'sign-in failed', agent_id: 'agent_1', password: '[REDACTED]' }),
    ]);
  });

  it('writes JSON when LOG_FORMAT is unset and the lines do not go to a terminal', async () => {
    const [line] = await linesLogged(undefined, (logger) => logger.info('started'));
    expect(JSON.parse(line)).toMatchObject({ msg: 'started' });
  });

  it('puts the request line on one human-readable line, the url redacted', async () => {
    const [line] = await linesLogged('pretty', logOneRequest);
    expect(line).toMatch(
      /^\[[\d:.]+\] WARN: request completed: GET \/api\/approvals\?who=\[REDACTED:email:[0-9a-f]+\] 403 \d+ms \{"reqId":"audit_[0-9a-f]+"\}\n$/,
    );
  });

  it('keeps the JSON request line as it was', async () => {
    const [line] = await linesLogged('json', logOneRequest);
    expect(JSON.parse(line)).toMatchObject({
      level: 40,
      msg: 'request completed',
      req: { method: 'GET', url: expect.stringMatching(/^\/api\/approvals\?who=\[REDACTED:email:/) },
      res: { status: 403 },
    });
  });

  it('refuses an unknown LOG_FORMAT at start', async () => {
    await expect(linesLogged('text', () => undefined)).rejects.toThrow('LOG_FORMAT must be json or pretty');
  });
});

describe('logFormat', () => {
  it('is pretty on a terminal and JSON elsewhere unless LOG_FORMAT says otherwise', () => {
    expect([logFormat(undefined, true), logFormat('', true), logFormat(undefined, false)]).toEqual(['pretty', 'pretty', 'json']);
    expect([logFormat('json', true), logFormat('pretty', false)]).toEqual(['json', 'pretty']);
  });
});
