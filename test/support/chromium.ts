import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, which `.ci/run` installs (apt-get install chromium). */
export const CHROMIUM = '/usr/bin/chromium';

/** Whether the browser half of a suite can run: required under CI, else skipped with one line naming `what`. */
export function browserAvailable(what: string): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`CI is set but ${CHROMIUM} is missing (apt-get install chromium)`);
  process.stderr.write(`skipping ${what}: no ${CHROMIUM} (apt-get install chromium; set CI to require it)\n`);
  return false;
}

/** Headless Chromium with the flags this machine's closed network needs (no background connections). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-quic',
      '--disable-sync',
    ],
  });
}
