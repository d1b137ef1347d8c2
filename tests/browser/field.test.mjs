// Browser tests of /field for riders and phlebotomists against a real server (see harness.mjs): offers
// with a countdown that survive a reload, a delivery handed over with the customer's code, and a
// phlebotomist's day route refreshed by the websocket, and an ambulance crew that sees what a call is
// about before accepting it and is sent to the hospital while transporting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { login } from './server.mjs';
import { WAIT, shot, withServer, signIn, pageErrors } from './harness.mjs';

const IST_OFFSET_MS = 330 * 60 * 1000;

// A phone on the street at `at`, sharing its location.
async function phone(browser, server, at) {
  return browser.newContext({
    baseURL: server.base, viewport: { width: 390, height: 844 }, deviceScaleFactor: 1,
    geolocation: { latitude: at.lat, longitude: at.lng, accuracy: 6 }, permissions: ['geolocation'],
  });
}

async function shareLocation(field) {
  await field.click('#share-location');
  await field.waitForFunction(() => /\) sent /.test(document.getElementById('geo-state').textContent), null, WAIT);
}

async function offerCountdown(field) {
  return Number(await field.textContent('#offer-countdown'));
}

test('a rider sees a delivery offer again after a reload, accepts it, and hands the order over with the customer’s code', async () => {
  await withServer(async ({ server, browser, api }) => {
    const customer = await login(api, 'customer1');
    const staff = await login(api, 'staff');
    const home = (await api('/api/v1/users/addresses', { token: customer })).items[0];
    assert.ok(home, 'the demo customer has an address');

    // The rider waits at the customer's street, so the cascade offers them the delivery first.
    const street = await phone(browser, server, { lat: home.lat, lng: home.lng });
    const field = await street.newPage();
    const errors = pageErrors(field);
    await signIn(field, '/field', 'rider1');
    await field.waitForFunction(() => document.getElementById('unit-name').textContent.includes('RIDER'), null, WAIT);
    if ((await field.getAttribute('#unit-status', 'data-status')) !== 'available') await field.click('#on-duty');
    await field.waitForFunction(() => document.getElementById('unit-status').dataset.status === 'available', null, WAIT);
    await shareLocation(field);

    // The customer orders cash on delivery; staff confirm and pack it.
    const medicines = await api('/api/v1/medicines?per_page=50');
    const medicine = medicines.items.find((m) => !m.prescription_required && m.in_stock);
    assert.ok(medicine, 'an over-the-counter medicine in stock');
    await api('/api/v1/cart/items', { method: 'POST', token: customer, body: { medicine_id: medicine.id, quantity: 1 } });
    const order = await api('/api/v1/orders', { method: 'POST', token: customer, body: { address_id: home.id, payment_method: 'cod' } });
    assert.match(order.delivery_code, /^\d{6}$/);
    for (const status of ['confirmed', 'packed']) {
      await api(`/api/v1/orders/${order.id}/status`, { method: 'PUT', token: staff, body: { status } });
    }

    await field.waitForSelector('#offer:not([hidden])[data-kind="order"]', WAIT);
    await field.waitForFunction((n) => document.getElementById('offer-text').textContent.includes(n), order.order_number, WAIT);
    const text = await field.textContent('#offer-text');
    assert.match(text, new RegExp(`#${order.id}\\b`));
    assert.match(text, /km to the customer · ETA /);
    const before = await offerCountdown(field);
    assert.ok(before > 0, 'the countdown runs');

    // A reload shows the same offer with what is left of its countdown.
    await field.reload();
    await field.waitForSelector('#live.on', WAIT);
    await field.waitForSelector(`#offer:not([hidden])[data-id="${order.id}"]`, WAIT);
    // The location keeps being shared after the reload.
    await field.waitForFunction(() => /\) sent /.test(document.getElementById('geo-state').textContent), null, WAIT);
    assert.match(await field.textContent('#offer-text'), new RegExp(order.order_number));
    const after = await offerCountdown(field);
    assert.ok(after > 0 && after <= before, `the countdown goes on (${before} → ${after})`);
    await field.click('#offer-accept');
    await field.waitForSelector('#offer', { state: 'hidden', timeout: WAIT.timeout });

    // The job: the delivery address to ride to, then pick up → out for delivery → the code at the door.
    await field.waitForSelector('#job:not([hidden])[data-kind="order"] button[data-step="shipped"]', WAIT);
    assert.match(await field.textContent('#job-address'), new RegExp(home.line1.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.match(await field.getAttribute('#job-map', 'href'), new RegExp(`^geo:${home.lat},${home.lng}`));
    assert.match(await field.textContent('#job-text'), /collect ₹/);
    assert.ok(await field.isHidden('#hospital-pick'), 'no hospital to pick on a delivery');
    await field.click('button[data-step="shipped"]');
    await field.waitForSelector('button[data-step="out_for_delivery"]', WAIT);
    await field.click('button[data-step="out_for_delivery"]');
    await field.waitForSelector('#deliver-form:not([hidden])', WAIT);
    assert.equal((await api(`/api/v1/orders/${order.id}`, { token: customer })).status, 'out_for_delivery');
    await shot(field, 'field-rider');

    const wrong = order.delivery_code === '000000' ? '000001' : '000000';
    await field.fill('#delivery-code', wrong);
    await field.click('#deliver');
    await field.waitForSelector('#job-error:not([hidden])[data-code="delivery_code_invalid"]', WAIT);
    assert.match(await field.textContent('#job-error'), /Wrong code .* 4 tries left/);
    assert.equal((await api(`/api/v1/orders/${order.id}`, { token: customer })).status, 'out_for_delivery', 'a wrong code changes nothing');
    await field.fill('#delivery-code', order.delivery_code);
    await field.click('#deliver');
    await field.waitForSelector('#job', { state: 'hidden', timeout: WAIT.timeout });
    assert.match(await field.textContent('#field-message'), new RegExp(`Delivered ${order.order_number}`));
    assert.equal((await api(`/api/v1/orders/${order.id}`, { token: customer })).status, 'delivered');
    await field.waitForFunction(() => document.getElementById('unit-status').dataset.status === 'available', null, WAIT);
    // The browser logs the refused wrong code's response; nothing else may go wrong.
    const unexpected = errors.filter((e) => !/status of 422 \(Unprocessable Entity\)/.test(e));
    assert.deepEqual(unexpected, [], 'no script errors on /field');
    assert.equal(errors.length - unexpected.length, 1, 'one refused code');
  });
});

// The first window phlebotomist1 works (06:00–14:00 India time) that can still be booked: today's when
// one is left, else tomorrow's first.
function bookableSlot() {
  const ist = new Date(Date.now() + IST_OFFSET_MS);
  const today = ist.toISOString().slice(0, 10);
  const minute = ist.getUTCHours() * 60 + ist.getUTCMinutes();
  const windows = ['06:00-08:00', '07:00-09:00', '08:00-10:00', '09:00-11:00', '10:00-12:00', '12:00-14:00'];
  // A few minutes of slack so the window has not started by the time the booking arrives.
  const open = windows.find((w) => Number(w.slice(0, 2)) * 60 > minute + 5);
  if (open) return { date: today, window: open, today: true };
  const tomorrow = new Date(ist.getTime() + 86400000).toISOString().slice(0, 10);
  return { date: tomorrow, window: '09:00-11:00', today: false };
}

test('a phlebotomist accepts collection offers (one again after a reload) and sees the day’s route refreshed live', async () => {
  await withServer(async ({ server, browser, api }) => {
    const customer = await login(api, 'customer1');
    const home = (await api('/api/v1/users/addresses', { token: customer })).items[0];
    const tests = await api('/api/v1/lab-tests?per_page=50');
    const cbc = tests.items.find((t) => t.code === 'CBC');
    assert.ok(cbc, 'the CBC test is in the catalog');
    const slot = bookableSlot();
    const book = (name) => api('/api/v1/lab-tests/book', {
      method: 'POST', token: customer,
      body: { test_ids: [cbc.id], address_id: home.id, slot: { date: slot.date, window: slot.window }, patient: { name, age: 58, gender: 'female', phone: '+919845012345' } },
    });

    const street = await phone(browser, server, { lat: home.lat, lng: home.lng });
    const field = await street.newPage();
    const errors = pageErrors(field);
    await signIn(field, '/field', 'phlebotomist1');
    // Today's route is the default; on a day with no window left the page is asked for tomorrow's.
    if (!slot.today) await field.goto('/field?date=' + slot.date);
    await field.waitForSelector('#collections:not([hidden])', WAIT);
    assert.match(await field.textContent('#collections-summary'), new RegExp(slot.date));
    assert.equal(await field.locator('#collections-list li').count(), 0, 'nothing planned yet');
    if ((await field.getAttribute('#unit-status', 'data-status')) !== 'available') await field.click('#on-duty');
    await shareLocation(field);

    const first = await book('Lakshmi Rao');
    await field.waitForSelector(`#offer:not([hidden])[data-kind="lab_collection"][data-id="${first.id}"]`, WAIT);
    assert.match(await field.textContent('#offer-text'), new RegExp(`Collection #${first.id}\\b.* km to the patient · ETA`));
    await field.click('#offer-accept');
    await field.waitForSelector('#offer', { state: 'hidden', timeout: WAIT.timeout });
    // The route gains the stop when the assignment is announced on the collector's topic.
    await field.waitForSelector(`#collections-list li.collect[data-ids="${first.id}"]`, WAIT);
    await field.waitForSelector(`#job:not([hidden])[data-kind="lab_collection"] button[data-step="en_route"]`, WAIT);
    assert.match(await field.textContent('#job-address'), /Lakshmi Rao/);

    // A second booking is offered; the page is reloaded before answering and shows the offer again.
    const second = await book('Prakash Rao');
    await field.waitForSelector(`#offer:not([hidden])[data-id="${second.id}"]`, WAIT);
    await field.reload();
    await field.waitForSelector('#live.on', WAIT);
    await field.waitForSelector(`#offer:not([hidden])[data-kind="lab_collection"][data-id="${second.id}"]`, WAIT);
    assert.ok((await offerCountdown(field)) > 0, 'the countdown goes on after the reload');
    await field.click('#offer-accept');
    await field.waitForSelector(`#collections-list li.collect[data-ids="${second.id}"]`, WAIT);

    // The list follows the planner's order, with a lab drop after the collections.
    const route = await api('/api/v1/lab-collections/route?date=' + slot.date, { token: await login(api, 'phlebotomist1') });
    const planned = route.stops.map((s) => s.kind + ':' + s.collection_ids.join(','));
    const shown = await field.$$eval('#collections-list li', (lis) => lis.map((li) => li.dataset.kind + ':' + li.dataset.ids));
    assert.deepEqual(shown, planned);
    assert.ok(shown.some((s) => s.startsWith('lab_drop:')), 'the samples end at the lab');
    for (const li of await field.$$('#collections-list li.collect')) {
      assert.match(await li.textContent(), /^\d\d:\d\d · #\d+ · .*sample good until \d\d:\d\d/);
    }

    // Steps of the current job move the collection on and refresh the route.
    await field.click('button[data-step="en_route"]');
    await field.waitForSelector('button[data-step="collected"]', WAIT);
    await shot(field, 'field-phlebotomist');
    const current = Number(await field.getAttribute('#job-text', 'data-id'));
    assert.equal((await api(`/api/v1/lab-collections/${current}`, { token: customer })).status, 'en_route');
    assert.deepEqual(errors, [], 'no script errors on /field');
  });
});

test('an ambulance crew sees the category, complaint, address and distance of an offer, and is navigated to the hospital while transporting', async () => {
  await withServer(async ({ server, browser, api }) => {
    const dispatcher = await login(api, 'dispatcher');
    const crewToken = await login(api, 'paramedic7');
    const unit = await api('/api/v1/emergency/my-unit', { token: crewToken });
    const at = unit.position ? { lat: unit.position.lat, lng: unit.position.lng } : unit.home;
    const street = await phone(browser, server, at);
    const field = await street.newPage();
    const errors = pageErrors(field);
    await signIn(field, '/field', 'paramedic7');
    await field.waitForFunction(() => document.getElementById('unit-status').dataset.status === 'available', null, WAIT);
    await shareLocation(field);

    // A call 700 m north of the unit: its crew is offered it first.
    const pickup = { lat: at.lat + 700 / 111195, lng: at.lng };
    const call = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcher,
      body: { pickup: { ...pickup, address: '18 Residency Road' }, category: 1, patient: { condition: 'not breathing' } },
    });
    await field.waitForSelector(`#offer:not([hidden])[data-id="${call.id}"]`, WAIT);
    await field.waitForFunction((id) => document.getElementById('offer-details').dataset.loaded === String(id), call.id, WAIT);
    assert.equal(await field.textContent('#offer-category'), 'C1 · life-threatening');
    assert.equal(await field.textContent('#offer-complaint'), 'not breathing');
    assert.equal(await field.textContent('#offer-address'), '18 Residency Road');
    const km = Number((await field.textContent('#offer-distance')).replace(' km', ''));
    assert.ok(Math.abs(km - 0.7) <= 0.1, `the distance to the patient: ${km} km`);
    assert.match(await field.textContent('#offer-text'), new RegExp(`#${call.id} · C1 · 0\\.7 km away · ETA`));
    await shot(field, 'field-offer');

    await field.click('#offer-accept');
    await field.waitForSelector('#job:not([hidden]) button[data-step="en_route"]', WAIT);
    // On the way to the patient, the map link goes to the incident.
    assert.equal(await field.getAttribute('#job-map', 'data-target'), 'incident');
    assert.match(await field.getAttribute('#job-map', 'href'), new RegExp(`^geo:${pickup.lat},${pickup.lng}\\?`));
    await field.click('button[data-step="en_route"]');
    await field.waitForSelector('button[data-step="on_scene"]', WAIT);
    await field.click('button[data-step="on_scene"]');
    await field.waitForSelector('#hospital-pick:not([hidden]) #hospital option', { ...WAIT, state: 'attached' });
    const hospitalId = Number(await field.inputValue('#hospital'));
    const hospital = await api(`/api/v1/hospitals/${hospitalId}`);
    await field.click('button[data-step="transporting"]');
    await field.waitForFunction(() => document.getElementById('job-text').dataset.status === 'transporting', null, WAIT);
    // While transporting, it goes to the destination hospital.
    await field.waitForFunction(() => document.getElementById('job-map')?.dataset.target === 'hospital', null, WAIT);
    assert.match(await field.getAttribute('#job-map', 'href'), new RegExp(`^geo:${hospital.lat},${hospital.lng}\\?`));
    assert.match(await field.textContent('#job-destination'), new RegExp(hospital.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    const transporting = await api(`/api/v1/emergency/ambulance-requests/${call.id}`, { token: dispatcher });
    assert.equal(transporting.status, 'transporting');
    assert.equal(transporting.destination_hospital_id, hospitalId);
    assert.deepEqual(errors, [], 'no script errors on /field');
  });
});
