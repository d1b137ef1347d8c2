// Browser tests of the tracking page against a real server (see pages.test.mjs for the set-up): a
// customer follows their order live, shares it, and the share link works signed out until it expires.
// Screenshots (track.png, track-shared.png) go to $ONEMEDI_SCREENSHOTS when it is set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
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
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: true });
}

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

function pageErrors(page) {
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  return errors;
}

// A share link signed like the server's (HS256 under the data dir's `jwt_secret`, audience
// `{auth.audience}-track`, subject `order:{id}`), with any expiry.
function shareToken(server, order, exp) {
  const secret = readFileSync(join(server.dataDir, 'jwt_secret'), 'utf8').trim();
  const part = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const head = part({ alg: 'HS256', typ: 'JWT' }) + '.' + part({ sub: `order:${order}`, iss: 'onemedi', aud: 'onemedi-api-track', iat: now, exp });
  return head + '.' + createHmac('sha256', secret).update(head).digest('base64url');
}

// The demo riders' websocket sessions, run in a page of the server's origin (the Origin the server
// accepts): each goes on duty, the one at `at` reports from there; whoever is offered `order` accepts.
async function ridersOnDuty(page, riders, at, order) {
  return page.evaluate(async ({ riders, at, order }) => {
    const open = (token) => new Promise((resolve, reject) => {
      const ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
      const pending = new Map();
      let next = 1;
      const s = {
        ws,
        offers: [],
        command(frame) {
          return new Promise((ok, fail) => {
            const ref = next++;
            pending.set(ref, { ok, fail });
            ws.send(JSON.stringify({ ...frame, ref }));
          });
        },
      };
      ws.onmessage = (m) => {
        const f = JSON.parse(m.data);
        if (pending.has(f.ref)) {
          const p = pending.get(f.ref);
          pending.delete(f.ref);
          if (f.type === 'ack') p.ok(f); else p.fail(new Error(JSON.stringify(f)));
        } else if (f.type === 'offer') {
          s.offers.push(f.event);
          if (s.onOffer) s.onOffer(f.event);
        }
      };
      ws.onopen = () => s.command({ type: 'auth', token }).then(() => resolve(s), reject);
      ws.onerror = () => reject(new Error('websocket error'));
    });
    const sessions = [];
    for (const r of riders) {
      const s = await open(r.token);
      s.unit = r.unit;
      await s.command({ type: 'subscribe', topic: 'unit:' + r.unit.id });
      await s.command({ type: 'status', status: 'available' });
      const where = r.here ? at : (r.unit.position || r.unit.home);
      await s.command({ type: 'location', lat: where.lat, lng: where.lng, heading: 0, speed: 0 });
      sessions.push(s);
    }
    window.riders = sessions;
    window.accepted = new Promise((resolve, reject) => {
      for (const s of sessions) {
        s.onOffer = (ev) => {
          if (ev.request && ev.request.kind === 'order' && ev.request.id === order) {
            s.command({ type: 'accept', request_id: order }).then(() => { window.carrier = s; resolve(s.unit.id); }, reject);
          }
        };
      }
    });
    return sessions.length;
  }, { riders, at, order });
}

async function carrierPing(page, lat, lng) {
  await page.evaluate(({ lat, lng }) => window.carrier.command({ type: 'location', lat, lng, heading: 45, speed: 6 }), { lat, lng });
}

async function markerAt(page, lat) {
  await page.waitForFunction((lat) => {
    const m = document.getElementById('unit-marker');
    return m && Math.abs(Number(m.dataset.lat) - lat) < 1e-6;
  }, lat, WAIT);
}

test('a customer follows their order live on /track, shares it, and the link works signed out until it expires', async () => {
  await withServer(async ({ server, browser, api }) => {
    const customerToken = await login(api, 'customer1');
    const staffToken = await login(api, 'staff');
    const addresses = await api('/api/v1/users/addresses', { token: customerToken });
    const address = (Array.isArray(addresses) ? addresses : addresses.items)[0];
    const shelf = await api('/api/v1/medicines?in_stock=true&prescription_required=false&per_page=5', { token: customerToken });
    await api('/api/v1/cart/items', { method: 'POST', token: customerToken, body: { medicine_id: shelf.items[0].id, quantity: 1 } });
    const order = await api('/api/v1/orders', { method: 'POST', token: customerToken, body: { address_id: address.id, payment_method: 'cod' } });
    assert.match(order.delivery_code, /^\d{6}$/);
    await api(`/api/v1/orders/${order.id}/status`, { method: 'PUT', token: staffToken, body: { status: 'confirmed' } });

    // Every demo rider on duty; rider1 right at the address, so the cascade offers it there first.
    const riders = [];
    for (const local of ['rider1', 'rider2', 'rider3', 'rider4']) {
      const token = await login(api, local);
      riders.push({ token, unit: await api('/api/v1/emergency/my-unit', { token }), here: local === 'rider1' });
    }
    const street = await browser.newContext({ baseURL: server.base });
    const fleet = await street.newPage();
    await fleet.goto('/');
    await ridersOnDuty(fleet, riders, { lat: address.lat, lng: address.lng }, order.id);
    await api(`/api/v1/orders/${order.id}/status`, { method: 'PUT', token: staffToken, body: { status: 'packed' } });
    const carrierUnit = await fleet.evaluate(() => window.accepted);
    const carrier = riders.find((r) => r.unit.id === carrierUnit);
    const start = { lat: address.lat + 0.006, lng: address.lng - 0.004 };
    await carrierPing(fleet, start.lat, start.lng);

    // The customer signs in through the login page and lands back on the tracking page.
    const home = await browser.newContext({ baseURL: server.base, viewport: { width: 480, height: 900 }, deviceScaleFactor: 1 });
    const page = await home.newPage();
    const errors = pageErrors(page);
    const path = `/track/${order.id}`;
    await page.goto(path);
    await page.waitForURL(/\/login\?next=/, WAIT);
    await page.fill('#email', email('customer1'));
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForURL((url) => url.pathname === path, WAIT);
    await page.waitForSelector('#live.on', WAIT);
    await page.waitForFunction(() => document.getElementById('status').dataset.status === 'packed', null, WAIT);
    assert.equal(await page.textContent('#delivery-code'), order.delivery_code, 'the owner sees the delivery code');
    assert.ok(await page.isVisible('#code-box'));
    assert.match(await page.textContent('#unit'), new RegExp(carrier.unit.call_sign));
    await markerAt(page, start.lat);
    assert.ok((await page.locator('#map-cells polygon').count()) > 10, 'the H3 basemap is drawn');
    assert.ok((await page.locator('#timeline li').count()) >= 3, 'placed, confirmed, packed');

    // Live, without a reload: the rider moves, then picks the order up.
    await page.evaluate(() => { window.sameDocument = true; });
    const closer = { lat: address.lat + 0.003, lng: address.lng - 0.002 };
    await carrierPing(fleet, closer.lat, closer.lng);
    await markerAt(page, closer.lat);
    assert.match(await page.textContent('#seen'), /^\d+ s ago$/, 'a fresh last-seen age');
    assert.notEqual(await page.textContent('#eta'), '—', 'an ETA from the rider position');
    await api(`/api/v1/orders/${order.id}/status`, { method: 'PUT', token: carrier.token, body: { status: 'shipped' } });
    await page.waitForFunction(() => document.getElementById('status').dataset.status === 'shipped', null, WAIT);
    await page.waitForFunction(() => document.getElementById('timeline').textContent.includes('shipped'), null, WAIT);
    assert.equal(await page.evaluate(() => window.sameDocument), true, 'no reload');

    // Share tracking for an hour: the full URL to copy.
    await page.selectOption('#share-hours', '1');
    await page.click('#share');
    await page.waitForSelector('#share-result:not([hidden])', WAIT);
    const url = await page.inputValue('#share-url');
    assert.ok(url.startsWith(server.base + '/track/'), url);
    const token = url.slice((server.base + '/track/').length);
    assert.equal(token.split('.').length, 3, 'a JWT');
    await shot(page, 'track');

    // Signed out, somewhere else: status, rider, ETA and timeline, never the code or the address.
    const friend = await browser.newContext({ viewport: { width: 480, height: 900 }, deviceScaleFactor: 1 });
    const shared = await friend.newPage();
    const sharedErrors = pageErrors(shared);
    await shared.goto(url);
    await shared.waitForSelector('#live.on', WAIT);
    await shared.waitForFunction(() => document.getElementById('status').dataset.status === 'shipped', null, WAIT);
    assert.equal(await shared.evaluate(() => localStorage.getItem('onemedi.session')), null, 'not signed in');
    await markerAt(shared, closer.lat);
    const text = await shared.textContent('body');
    assert.ok(!text.includes(order.delivery_code), 'no delivery code');
    assert.ok(!text.includes(address.line1), 'no address');
    assert.ok(!(await shared.isVisible('#code-box')) && !(await shared.isVisible('#share-box')));
    // Live over the share link's read-only session.
    const nearer = { lat: address.lat + 0.001, lng: address.lng - 0.001 };
    await carrierPing(fleet, nearer.lat, nearer.lng);
    await markerAt(shared, nearer.lat);
    await markerAt(page, nearer.lat);
    await shot(shared, 'track-shared');

    // A link that expires while open: the page says so and shows nothing more.
    const brief = shareToken(server, order.id, Math.floor(Date.now() / 1000) + 6);
    const lapsing = await friend.newPage();
    await lapsing.goto(`${server.base}/track/${brief}`);
    await lapsing.waitForSelector('#live.on', WAIT);
    await lapsing.waitForSelector('#gone:not([hidden])', WAIT);
    assert.equal(await lapsing.textContent('#gone-title'), 'This tracking link has expired');
    assert.ok(await lapsing.isHidden('#tracking'));

    // Expired or tampered links show a message and no data.
    const expired = shareToken(server, order.id, Math.floor(Date.now() / 1000) - 60);
    await shared.goto(`${server.base}/track/${expired}`);
    await shared.waitForSelector('#gone:not([hidden])', WAIT);
    assert.equal(await shared.textContent('#gone-title'), 'This tracking link has expired');
    assert.ok(await shared.isHidden('#tracking'));
    assert.ok(!(await shared.textContent('body')).includes(carrier.unit.call_sign), 'no data');
    const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA');
    await shared.goto(`${server.base}/track/${tampered}`);
    await shared.waitForSelector('#gone:not([hidden])', WAIT);
    assert.match(await shared.textContent('#gone-title'), /not valid/);

    assert.deepEqual(errors, [], 'no script errors on the owner\'s page');
    assert.deepEqual(sharedErrors.filter((e) => !/401/.test(e)), [], 'no script errors on the shared page');
  });
});

test('a requester follows their ambulance request on /track/ambulance as a unit is assigned', async () => {
  await withServer(async ({ server, browser, api }) => {
    const customerToken = await login(api, 'customer2');
    const dispatcherToken = await login(api, 'dispatcher');
    const board = await api('/api/v1/emergency/board', { token: dispatcherToken });
    const unit = board.units.find((u) => u.status === 'available' && u.position);
    assert.ok(unit, 'an available ambulance');
    // Far from every unit, so the cascade offers it around while the dispatcher assigns one directly.
    const request = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: customerToken,
      body: { pickup: { lat: unit.position.lat + 0.01, lng: unit.position.lng + 0.01, address: '4 Church Street' }, category: 3, patient: { condition: 'fall' } },
    });
    const ctx = await browser.newContext({ baseURL: server.base, viewport: { width: 480, height: 900 } });
    const page = await ctx.newPage();
    const errors = pageErrors(page);
    const path = `/track/ambulance/${request.id}`;
    await page.goto(path);
    await page.waitForURL(/\/login\?next=/, WAIT);
    await page.fill('#email', email('customer2'));
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForURL((url) => url.pathname === path, WAIT);
    await page.waitForSelector('#live.on', WAIT);
    await page.waitForFunction(() => document.getElementById('heading').textContent.includes('Ambulance request'), null, WAIT);
    await page.evaluate(() => { window.sameDocument = true; });
    const current = await api(`/api/v1/emergency/ambulance-requests/${request.id}`, { token: dispatcherToken });
    if (current.status !== 'assigned') {
      await api(`/api/v1/emergency/ambulance-requests/${request.id}/assign`, { method: 'POST', token: dispatcherToken, body: { unit_id: unit.id } });
    }
    const assigned = await api(`/api/v1/emergency/ambulance-requests/${request.id}`, { token: dispatcherToken });
    await page.waitForFunction((sign) => document.getElementById('status').dataset.status === 'assigned'
      && document.getElementById('unit').textContent.includes(sign), assigned.unit.call_sign, WAIT);
    await page.waitForSelector('#unit-marker', WAIT);
    assert.equal(await page.evaluate(() => window.sameDocument), true, 'no reload');
    assert.ok(!(await page.isVisible('#share-box')), 'share links are for orders');
    assert.deepEqual(errors, []);
  });
});
