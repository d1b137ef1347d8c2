// Shared by the browser test files: a browser and a fresh server per test, signing in through the login
// page, screenshots into $ONEMEDI_SCREENSHOTS, and the page's script errors.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, client, email, PASSWORD } from './server.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];
export const WAIT = { timeout: 20000 };
const SHOTS = process.env.ONEMEDI_SCREENSHOTS || null;

export async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });
}

// Opens the browser and a server; `body` gets both; everything is closed whatever happens.
export async function withServer(body) {
  const server = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  try {
    await body({ server, browser, api: client(server.base) });
  } catch (e) {
    e.message += '\n--- server log ---\n' + server.log().slice(-4000);
    throw e;
  } finally {
    await browser.close();
    await server.stop();
  }
}

// Signs in through the login page (reached by opening `path` signed out) and waits to be back on `path`.
export async function signIn(page, path, local) {
  await page.goto(path);
  await page.waitForURL(/\/login\?next=/, WAIT);
  await page.fill('#email', email(local));
  await page.fill('#password', PASSWORD);
  await page.click('#login-submit');
  await page.waitForURL((url) => url.pathname === path, WAIT);
  await page.waitForSelector('#live.on', WAIT);
}

export function pageErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return errors;
}
