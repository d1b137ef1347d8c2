// Browser tests of the pages against a real server: headless Debian Chromium driven by playwright-core.
// Each test starts its own `onemedi serve` (fresh SQLite data dir, demo city) on a random port.
// Screenshots go to $ONEMEDI_SCREENSHOTS (e.g. docs/screenshots) when it is set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, client, login, email, PASSWORD } from './server.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'];
const WAIT = { timeout: 20000 };
const SHOTS = process.env.ONEMEDI_SCREENSHOTS || null;

async function shot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name + '.png') });
}

// Opens the browser and a server; `body` gets both; everything is closed whatever happens.
async function withServer(body) {
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
async function signIn(page, path, local, screenshot) {
  await page.goto(path);
  await page.waitForURL(/\/login\?next=/, WAIT);
  await page.fill('#email', email(local));
  await page.fill('#password', PASSWORD);
  if (screenshot) await shot(page, screenshot);
  await page.click('#login-submit');
  await page.waitForURL((url) => url.pathname === path, WAIT);
  await page.waitForSelector('#live.on', WAIT);
}

function pageErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return errors;
}

test('a dispatcher signs in, sees a unit move on the map when its crew reports a location, and assigns a request by clicking', async () => {
  await withServer(async ({ server, browser, api }) => {
    const dispatcherToken = await login(api, 'dispatcher');
    const crewToken = await login(api, 'paramedic3');
    const moving = await api('/api/v1/emergency/my-unit', { token: crewToken });
    const home = moving.position || { lat: moving.home.lat, lng: moving.home.lng };
    const first = { latitude: home.lat + 0.012, longitude: home.lng - 0.008, accuracy: 5 };
    const second = { latitude: home.lat + 0.021, longitude: home.lng + 0.004, accuracy: 5 };

    const desk = await browser.newContext({ baseURL: server.base, viewport: { width: 1400, height: 860 } });
    const console_ = await desk.newPage();
    const deskErrors = pageErrors(console_);
    await signIn(console_, '/console', 'dispatcher', 'login');
    const marker = `#map-units [data-unit-id="${moving.id}"]`;
    await console_.waitForSelector(marker, WAIT);
    assert.ok((await console_.locator('#map-cells polygon').count()) > 50, 'the H3 basemap is drawn');
    const before = await console_.getAttribute(marker, 'transform');

    // The crew shares its browser's location from /field; the console follows over the websocket.
    const street = await browser.newContext({ baseURL: server.base, viewport: { width: 390, height: 800 }, geolocation: first, permissions: ['geolocation'] });
    const field = await street.newPage();
    await signIn(field, '/field', 'paramedic3');
    await field.waitForFunction(() => document.getElementById('unit-name').textContent.includes('BLR-'), null, WAIT);
    await field.click('#share-location');
    await console_.waitForFunction(([sel, lat]) => {
      const m = document.querySelector(sel);
      return m && Math.abs(Number(m.dataset.lat) - lat) < 1e-6;
    }, [marker, first.latitude], WAIT);
    const moved = await console_.getAttribute(marker, 'transform');
    assert.notEqual(moved, before, 'the marker moved on the map');
    await street.setGeolocation(second);
    await console_.waitForFunction(([sel, lat]) => {
      const m = document.querySelector(sel);
      return m && Math.abs(Number(m.dataset.lat) - lat) < 1e-6;
    }, [marker, second.latitude], WAIT);
    assert.notEqual(await console_.getAttribute(marker, 'transform'), moved, 'and again after the next fix');
    const row = console_.locator(`#units tr[data-unit-id="${moving.id}"] .seen`);
    assert.match(await row.textContent(), /^\d+ s$/, 'the board shows a fresh last-seen age');

    // A call comes in; the dispatcher picks it and clicks Assign on the unit farthest from it (one the
    // automatic cascade is least likely to have offered it to).
    const pickup = { lat: home.lat - 0.01, lng: home.lng + 0.01 };
    const request = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcherToken,
      body: { pickup: { ...pickup, address: '12 MG Road' }, category: 3, patient: { name: 'Test Patient', age: 40, condition: 'fall' } },
    });
    const item = `#requests tr[data-request-id="${request.id}"]`;
    await console_.waitForSelector(item, WAIT);
    const board = await api('/api/v1/emergency/board', { token: dispatcherToken });
    const far = board.units
      .filter((u) => u.status === 'available' && u.position && u.id !== moving.id)
      .sort((a, b) => (Math.hypot(b.position.lat - pickup.lat, b.position.lng - pickup.lng) - Math.hypot(a.position.lat - pickup.lat, a.position.lng - pickup.lng)))[0];
    assert.ok(far, 'an available unit to assign');
    await console_.click(item);
    await console_.waitForSelector('#detail:not([hidden])', WAIT);
    await console_.click(`#units tr[data-unit-id="${far.id}"] button.assign:not([disabled])`);
    await console_.waitForFunction(() => document.getElementById('assign-result').className === 'ok', null, WAIT);
    const assigned = await api(`/api/v1/emergency/ambulance-requests/${request.id}`, { token: dispatcherToken });
    assert.equal(assigned.status, 'assigned');
    assert.equal(assigned.unit.id, far.id);
    // The unit's marker turns "assigned" from the websocket's unit_status event.
    await console_.waitForSelector(`#map-units [data-unit-id="${far.id}"][data-status="assigned"]`, WAIT);
    await console_.waitForFunction(() => document.getElementById('timeline').textContent.includes('assigned'), null, WAIT);

    // A life-threatening call far beyond every unit: nobody can reach it, and the console raises the
    // predicted ARP breach as it is announced on the dispatch topic.
    const remote = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcherToken,
      body: { pickup: { lat: home.lat + 1.5, lng: home.lng + 1.5, address: 'Far away' }, category: 1 },
    });
    await console_.waitForSelector(`#alerts .alert[data-request-id="${remote.id}"]`, { timeout: 30000 });
    await console_.waitForSelector(`#requests tr.breach[data-request-id="${remote.id}"]`, WAIT);
    assert.match(await console_.textContent(`#alerts .alert[data-request-id="${remote.id}"]`), /C1/);
    assert.ok(await console_.isVisible('#detail'), 'the assigned call stays selected');
    await shot(console_, 'console');
    assert.deepEqual(deskErrors, [], 'no script errors on the console');
  });
});

test('a crew member goes off and on duty on /field, receives an offer with a countdown and accepts it by clicking', async () => {
  await withServer(async ({ server, browser, api }) => {
    const dispatcherToken = await login(api, 'dispatcher');
    const crewToken = await login(api, 'paramedic1');
    const unit = await api('/api/v1/emergency/my-unit', { token: crewToken });
    const at = unit.position || { lat: unit.home.lat, lng: unit.home.lng };

    const street = await browser.newContext({
      baseURL: server.base, viewport: { width: 390, height: 844 }, deviceScaleFactor: 1,
      geolocation: { latitude: at.lat, longitude: at.lng, accuracy: 8 }, permissions: ['geolocation'],
    });
    const field = await street.newPage();
    const errors = pageErrors(field);
    await signIn(field, '/field', 'paramedic1');
    await field.waitForFunction(() => document.getElementById('unit-status').dataset.status === 'available', null, WAIT);

    await field.click('#off-duty');
    await field.waitForFunction(() => document.getElementById('unit-status').dataset.status === 'off_duty', null, WAIT);
    assert.equal((await api(`/api/v1/emergency/units/${unit.id}`, { token: crewToken })).status, 'off_duty');
    await field.click('#on-duty');
    await field.waitForFunction(() => document.getElementById('unit-status').dataset.status === 'available', null, WAIT);
    assert.equal((await api(`/api/v1/emergency/units/${unit.id}`, { token: crewToken })).status, 'available');

    await field.click('#share-location');
    await field.waitForFunction(() => document.getElementById('geo-state').textContent.includes('sent'), null, WAIT);

    // A call right where the unit is: the cascade offers it to this crew first.
    const request = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcherToken,
      body: { pickup: { lat: at.lat, lng: at.lng, address: 'Next to the station' }, category: 2, patient: { condition: 'chest pain' } },
    });
    await field.waitForSelector('#offer:not([hidden])', WAIT);
    assert.match(await field.textContent('#offer-text'), new RegExp(`#${request.id}\\b`));
    assert.ok(Number(await field.textContent('#offer-countdown')) > 0, 'the countdown runs');
    await shot(field, 'field');
    await field.click('#offer-accept');
    await field.waitForSelector('#offer', { state: 'hidden', timeout: WAIT.timeout });
    const accepted = await api(`/api/v1/emergency/ambulance-requests/${request.id}`, { token: dispatcherToken });
    assert.equal(accepted.status, 'assigned');
    assert.equal(accepted.unit.id, unit.id);

    // The job's next step is one click away.
    await field.waitForSelector('#job:not([hidden]) button[data-step="en_route"]', WAIT);
    await field.click('button[data-step="en_route"]');
    await field.waitForFunction(() => document.getElementById('job-text').dataset.status === 'en_route', null, WAIT);
    const underway = await api(`/api/v1/emergency/ambulance-requests/${request.id}`, { token: dispatcherToken });
    assert.equal(underway.status, 'en_route');
    assert.ok(underway.times.en_route, 'the en-route time is recorded');
    assert.deepEqual(errors, [], 'no script errors on /field');
  });
});

test('pages are served from the binary with a strict policy, and the login page refuses a wrong password', async () => {
  await withServer(async ({ server, browser }) => {
    for (const path of ['/', '/login', '/console', '/field']) {
      const res = await fetch(server.base + path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type'), /^text\/html/);
      assert.match(res.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/);
      const html = await res.text();
      assert.doesNotMatch(html, /https?:\/\//, `${path} loads nothing from elsewhere`);
    }
    const ctx = await browser.newContext({ baseURL: server.base });
    const page = await ctx.newPage();
    await page.goto('/console');
    await page.waitForURL(/\/login\?next=%2Fconsole/, WAIT);
    await page.fill('#email', email('dispatcher'));
    await page.fill('#password', 'not-the-password');
    await page.click('#login-submit');
    await page.waitForSelector('#login-error:not([hidden])', WAIT);
    assert.match(await page.textContent('#login-error'), /wrong/);
    assert.equal(await page.evaluate(() => localStorage.getItem('onemedi.session')), null);
    // A customer who signs in is told the console is not for them.
    const customer = await client(server.base)('/api/v1/auth/login', { method: 'POST', body: { email: email('customer1'), password: PASSWORD } });
    await page.evaluate((s) => localStorage.setItem('onemedi.session', JSON.stringify({ token: s.token, user: s.user })), customer);
    await page.goto('/console');
    await page.waitForSelector('text=Not for your role', WAIT);
    // A token the server no longer accepts sends the user back to the login page, token forgotten.
    await page.evaluate(() => localStorage.setItem('onemedi.session', JSON.stringify({ token: 'forged.token.value', user: { id: 1, name: 'X', role: 'dispatcher' } })));
    await page.goto('/console');
    await page.waitForURL(/\/login\?next=%2Fconsole/, WAIT);
    assert.equal(await page.evaluate(() => localStorage.getItem('onemedi.session')), null);
  });
});
