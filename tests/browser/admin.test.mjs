// The back office (/admin) in headless Chromium against a real server with the demo city: an
// administrator signs in, creates a medicine, views and approves a prescription a customer uploaded,
// moves an order to its next status (only legal moves are offered) and sees the analytics charts drawn
// from that data. Screenshots go to $ONEMEDI_SCREENSHOTS (admin.png, admin-analytics.png) when set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
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

function crc32(bytes) {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

// A real PNG (a small "Rx" card: white with a red band) so the browser can draw it.
function prescriptionPng(width = 240, height = 120) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3, 255);
    row[0] = 0;
    for (let x = 0; x < width; x++) {
      const band = y < 24;
      const line = y > 40 && y % 16 === 0 && x > 16 && x < width - 16;
      if (band || line) {
        row[1 + x * 3] = band ? 198 : 120;
        row[2 + x * 3] = band ? 40 : 120;
        row[3 + x * 3] = band ? 40 : 120;
      }
    }
    rows.push(row);
  }
  const chunk = (type, data) => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0); header.writeUInt32BE(height, 4);
  header[8] = 8; header[9] = 2; header[10] = 0; header[11] = 0; header[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0)),
  ]);
}

function indiaToday() {
  return new Date(Date.now() + 330 * 60 * 1000).toISOString().slice(0, 10);
}

test('an admin creates a medicine, approves a prescription, moves an order on and sees the analytics charts', async () => {
  const server = await startServer();
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  try {
    const api = client(server.base);
    const admin = await login(api, 'admin');
    const customer = await login(api, 'customer1');

    // The customer uploads a prescription and places a cash-on-delivery order.
    const form = new FormData();
    form.append('file', new Blob([prescriptionPng()], { type: 'image/png' }), 'rx-card.png');
    form.append('patient_name', 'Asha Customer');
    form.append('doctor_name', 'Dr. Meera Rao');
    const uploaded = await fetch(server.base + '/api/v1/users/prescriptions', { method: 'POST', headers: { Authorization: `Bearer ${customer}` }, body: form });
    assert.equal(uploaded.status, 201, await uploaded.clone().text());
    const rx = await uploaded.json();
    const address = await api('/api/v1/users/addresses', {
      method: 'POST', token: customer,
      body: { label: 'Home', line1: '12 MG Road', city: 'Bengaluru', state: 'Karnataka', pincode: '560001', lat: 12.9716, lng: 77.5946 },
    });
    const stocked = await api('/api/v1/medicines?prescription_required=false&in_stock=true&per_page=1');
    await api('/api/v1/cart/items', { method: 'POST', token: customer, body: { medicine_id: stocked.items[0].id, quantity: 1 } });
    const order = await api('/api/v1/orders', { method: 'POST', token: customer, body: { address_id: address.id, payment_method: 'cod' } });
    assert.equal(order.status, 'pending');
    // A second order paid online (the Razorpay test checkout): today's revenue.
    await api('/api/v1/cart/items', { method: 'POST', token: customer, body: { medicine_id: stocked.items[0].id, quantity: 2 } });
    const paid = await api('/api/v1/orders', { method: 'POST', token: customer, body: { address_id: address.id, payment_method: 'razorpay' } });
    const checkout = await api('/api/v1/payments/create-order', { method: 'POST', token: customer, body: { order_id: paid.id } });
    const signed = await api('/api/v1/payments/simulate', { method: 'POST', token: customer, body: { razorpay_order_id: checkout.razorpay_order_id } });
    assert.equal((await api('/api/v1/payments/verify', { method: 'POST', token: customer, body: signed })).order_status, 'confirmed');

    // A category 2 call the dispatcher assigns and the crew reaches: a response time for the chart.
    const dispatcher = await login(api, 'dispatcher');
    const crew = await login(api, 'paramedic1');
    const unit = await api('/api/v1/emergency/my-unit', { token: crew });
    const at = unit.position || unit.home;
    // The call is placed at another unit far from this crew, so the automatic cascade offers it there
    // and the dispatcher's assignment of this crew does not race an offer to it.
    const board = await api('/api/v1/emergency/board', { token: dispatcher });
    const away = board.units
      .filter((u) => u.status === 'available' && u.position && u.id !== unit.id)
      .sort((a, b) => Math.hypot(b.position.lat - at.lat, b.position.lng - at.lng) - Math.hypot(a.position.lat - at.lat, a.position.lng - at.lng))[0];
    assert.ok(away, 'another available unit');
    const call = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcher,
      body: { pickup: { lat: away.position.lat, lng: away.position.lng, address: 'Across town' }, category: 2, patient: { condition: 'breathless' } },
    });
    await api(`/api/v1/emergency/ambulance-requests/${call.id}/assign`, { method: 'POST', token: dispatcher, body: { unit_id: unit.id } });
    for (const status of ['en_route', 'on_scene']) {
      await api(`/api/v1/emergency/units/${unit.id}/status`, { method: 'PUT', token: crew, body: { status } });
    }

    const ctx = await browser.newContext({ baseURL: server.base, viewport: { width: 1360, height: 900 } });
    const page = await ctx.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

    // Signing in on the way to /admin.
    await page.goto('/admin');
    await page.waitForURL(/\/login\?next=%2Fadmin/, WAIT);
    await page.fill('#email', email('admin'));
    await page.fill('#password', PASSWORD);
    await page.click('#login-submit');
    await page.waitForURL((url) => url.pathname === '/admin', WAIT);
    await page.waitForSelector('#live.on', WAIT);

    // Catalog: create a medicine through the form.
    await page.waitForSelector('#med-category option', { state: 'attached', timeout: WAIT.timeout });
    await page.fill('#med-name', 'Cetirizine 10');
    await page.fill('#med-salt', 'Cetirizine 10 mg');
    await page.selectOption('#med-form', 'tablet');
    await page.fill('#med-pack', 'strip of 10');
    await page.fill('#med-price', '24.50');
    await page.fill('#med-mrp', '28');
    await page.fill('#med-stock', '40');
    await page.click('#med-create-submit');
    await page.waitForSelector('#med-create-result.ok', WAIT);
    const medicineId = Number(await page.getAttribute('#med-create-result', 'data-medicine-id'));
    const created = await api(`/api/v1/medicines/${medicineId}`);
    assert.equal(created.name, 'Cetirizine 10');
    assert.equal(created.price_paise, 2450);
    assert.equal(created.mrp_paise, 2800);
    assert.equal(created.stock, 40);
    await page.waitForSelector(`#med-list tr[data-medicine-id="${medicineId}"]`, WAIT);
    await shot(page, 'admin');

    // Prescriptions: view the uploaded image, then approve it.
    await page.click('.tabs button[data-tab="prescriptions"]');
    const rxRow = `#rx-list tr[data-prescription-id="${rx.id}"]`;
    await page.waitForSelector(rxRow, WAIT);
    await page.click(`${rxRow} button.view`);
    await page.waitForFunction(() => {
      const img = document.getElementById('rx-image');
      return img && img.complete && img.naturalWidth === 240;
    }, null, WAIT);
    await page.fill(`${rxRow} input.reason`, 'Legible, signed and dated');
    await page.click(`${rxRow} button.approve`);
    await page.waitForSelector(rxRow, { state: 'detached', timeout: WAIT.timeout });
    const mine = await api('/api/v1/users/prescriptions', { token: customer });
    const reviewed = mine.items.find((p) => p.id === rx.id);
    assert.equal(reviewed.status, 'approved');
    assert.equal(reviewed.review_notes, 'Legible, signed and dated');

    // Orders: only the legal moves are offered; confirm the order.
    await page.click('.tabs button[data-tab="orders"]');
    const orderRow = `#order-list tr[data-order-id="${order.id}"]`;
    await page.waitForSelector(orderRow, WAIT);
    const offered = await page.$$eval(`${orderRow} button.move`, (bs) => bs.map((b) => b.dataset.to));
    assert.deepEqual(offered, ['confirmed', 'cancelled']);
    await page.click(`${orderRow} button.move[data-to="confirmed"]`);
    await page.waitForSelector(`${orderRow}[data-status="confirmed"]`, WAIT);
    assert.deepEqual(await page.$$eval(`${orderRow} button.move`, (bs) => bs.map((b) => b.dataset.to)), ['packed', 'cancelled']);
    const moved = await api(`/api/v1/orders/${order.id}`, { token: customer });
    assert.equal(moved.status, 'confirmed');
    // The status filter.
    await page.selectOption('#order-status', 'delivered');
    await page.waitForSelector(orderRow, { state: 'detached', timeout: WAIT.timeout });

    // Analytics: today's order bar, and the category 2 response against its target.
    await page.click('.tabs button[data-tab="analytics"]');
    await page.waitForSelector('#tab-analytics[data-loaded="true"]', WAIT);
    const today = indiaToday();
    const bars = await page.$$eval('#chart-orders rect.bar', (rs) => rs.map((r) => [r.dataset.date, Number(r.dataset.value), Number(r.getAttribute('height'))]));
    assert.equal(bars.length, 30);
    const todays = bars.find(([date]) => date === today);
    assert.ok(todays && todays[1] >= 1 && todays[2] > 0, `today's bar shows the order: ${JSON.stringify(todays)}`);
    const revenue = await page.$$eval('#chart-revenue rect.bar', (rs) => rs.map((r) => [r.dataset.date, Number(r.dataset.value)]));
    assert.equal(revenue.length, 30);
    assert.deepEqual(revenue.find(([date]) => date === today), [today, paid.total_paise / 100], "today's revenue is the paid order");
    const arp = await page.$$eval('#chart-arp rect.bar', (rs) => rs.map((r) => [r.dataset.category, r.dataset.value]));
    assert.equal(arp.length, 4);
    assert.ok(Number(arp[1][1]) >= 0 && arp[1][1] !== '', `category 2 has a response time: ${JSON.stringify(arp)}`);
    assert.equal(await page.locator('#chart-arp line.target').count(), 4);
    const figures = await api(`/api/v1/admin/analytics?from=${today}&to=${today}`, { token: admin });
    assert.equal(figures.ambulance_response[1].responded, 1);
    assert.equal(figures.orders.total, 2);
    assert.equal(figures.orders.revenue_paise, paid.total_paise);
    await shot(page, 'admin-analytics');

    // Units & facilities load for an administrator.
    await page.click('.tabs button[data-tab="facilities"]');
    await page.waitForSelector(`#unit-list tr[data-unit-id="${unit.id}"]`, WAIT);
    await page.waitForSelector('#hospital-list tr[data-hospital-id]', WAIT);
    await page.waitForSelector('#bank-list tr[data-bank-id]', WAIT);
    assert.deepEqual(errors, [], 'no script errors on /admin');
  } catch (e) {
    e.message += '\n--- server log ---\n' + server.log().slice(-4000);
    throw e;
  } finally {
    await browser.close();
    await server.stop();
  }
});
