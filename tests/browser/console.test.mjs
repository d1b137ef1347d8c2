// Browser test of /console against a real server (see harness.mjs): a dispatcher follows a unit while its
// crew, from a websocket session and REST like the crew's app, accepts a call and works it step by step
// and keeps reporting its position. After every step the console must show what the API says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { login } from './server.mjs';
import { openCrewSession } from './crew.mjs';
import { WAIT, shot, withServer, signIn, pageErrors } from './harness.mjs';

// The console's row of `unit` agrees with `status`: the status text, and Assign enabled exactly when
// the unit is available (a request being selected).
function rowAgrees({ id, status }) {
  const row = document.querySelector(`#units tr[data-unit-id="${id}"]`);
  if (!row) return false;
  const shown = row.querySelector('.unit-status').textContent;
  const assign = row.querySelector('button.assign');
  return shown === status.replace(/_/g, ' ') && assign.disabled === (status !== 'available');
}

test('a dispatcher follows a unit on the console through every step its crew takes over REST while it keeps sending its position', async () => {
  await withServer(async ({ server, browser, api }) => {
    const dispatcher = await login(api, 'dispatcher');
    const crewToken = await login(api, 'paramedic5');
    const unit = await api('/api/v1/emergency/my-unit', { token: crewToken });
    const at = unit.position ? { lat: unit.position.lat, lng: unit.position.lng } : unit.home;
    const hospital = (await api('/api/v1/hospitals')).items[0];
    assert.ok(hospital, 'the demo city has a hospital');

    // The crew's app: on duty, reporting from where it stands. Positions only ever move north, so
    // the marker's latitude tells which ping the console has seen last.
    const crew = await openCrewSession(server.base, crewToken);
    await crew.command({ type: 'subscribe', topic: `unit:${unit.id}` });
    await crew.command({ type: 'status', status: 'available' });
    let sent = 0;
    const ping = async () => {
      sent++;
      const lat = at.lat + 0.00001 * sent;
      await crew.command({ type: 'location', lat, lng: at.lng, heading: 0, speed: 8 });
      return lat;
    };
    await ping();

    const desk = await browser.newContext({ baseURL: server.base, viewport: { width: 1400, height: 860 } });
    const page = await desk.newPage();
    const errors = pageErrors(page);
    await signIn(page, '/console', 'dispatcher');
    const marker = `#map-units [data-unit-id="${unit.id}"]`;
    await page.waitForSelector(marker, WAIT);

    // Pings sent after a step must not undo it: once the console has drawn the latest of them, the
    // row still says what the API says.
    const agreesAfterPings = async (what) => {
      let lat;
      for (let i = 0; i < 3; i++) lat = await ping();
      await page.waitForFunction(([sel, lat]) => {
        const m = document.querySelector(sel);
        return m && Number(m.dataset.lat) >= lat - 1e-9;
      }, [marker, lat], WAIT);
      const { status } = await api(`/api/v1/emergency/units/${unit.id}`, { token: dispatcher });
      const row = { id: unit.id, status };
      assert.ok(await page.evaluate(rowAgrees, row), `${what}: the console's row disagrees with the API's ${status}`);
      return status;
    };

    // A call out of everyone's reach stays open: selected, it makes Assign depend on the unit alone.
    const far = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcher,
      body: { pickup: { lat: at.lat + 1.5, lng: at.lng + 1.5, address: 'Far away' }, category: 3 },
    });
    await page.click(`#requests tr[data-request-id="${far.id}"]`);
    await page.waitForSelector('#detail:not([hidden])', WAIT);
    await page.waitForFunction(rowAgrees, { id: unit.id, status: 'available' }, WAIT);
    assert.equal(await agreesAfterPings('on duty'), 'available');

    // The crew keeps reporting all along, as its app does.
    const background = setInterval(() => { ping().catch(() => {}); }, 250);
    try {
      // The offer may arrive before the call's own answer does: it is kept until the call's id is known.
      const offers = [];
      let wanted = null;
      let answered;
      const accepted = new Promise((resolve, reject) => { answered = { resolve, reject }; });
      const accept = (id) => crew.command({ type: 'accept', request_id: id }).then(answered.resolve, answered.reject);
      crew.onOffer = (offer) => {
        if (wanted !== null && offer.request.id === wanted) accept(wanted); else offers.push(offer);
      };
      const call = await api('/api/v1/emergency/ambulance-requests', {
        method: 'POST', token: dispatcher,
        body: { pickup: { lat: at.lat, lng: at.lng, address: 'Beside the station' }, category: 2, patient: { condition: 'breathless' } },
      });
      wanted = call.id;
      if (offers.some((offer) => offer.request.id === call.id)) accept(call.id);
      await accepted;
      await page.waitForFunction(rowAgrees, { id: unit.id, status: 'assigned' }, WAIT);
      assert.equal(await agreesAfterPings('accepted'), 'assigned');

      const steps = [
        ['en_route', 'en_route'],
        ['on_scene', 'on_scene'],
        ['transporting', 'transporting'],
        ['at_destination', 'at_destination'],
        ['handed_over', 'at_destination'],
        ['back_in_service', 'available'],
      ];
      for (const [step, stored] of steps) {
        const body = step === 'transporting' ? { status: step, hospital_id: hospital.id } : { status: step };
        const moved = await api(`/api/v1/emergency/units/${unit.id}/status`, { method: 'PUT', token: crewToken, body });
        assert.equal(moved.status, stored, step);
        await page.waitForFunction(rowAgrees, { id: unit.id, status: stored }, WAIT);
        assert.equal(await agreesAfterPings(step), stored);
      }
      const done = await api(`/api/v1/emergency/ambulance-requests/${call.id}`, { token: dispatcher });
      assert.equal(done.status, 'closed');
    } finally {
      clearInterval(background);
      crew.close();
    }
    assert.ok(await page.isEnabled(`#units tr[data-unit-id="${unit.id}"] button.assign`), 'the unit back in service can be assigned');
    assert.deepEqual(errors, [], 'no script errors on the console');
  });
});

// WCAG contrast of every visible badge's text on its background, computed from the page's styles.
function badgeContrasts() {
  const rgb = (s) => s.match(/[\d.]+/g).slice(0, 3).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.map((v) => v / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  return [...document.querySelectorAll('.badge')].filter((b) => b.offsetParent !== null).map((b) => {
    const s = getComputedStyle(b);
    const [x, y] = [lum(rgb(s.color)), lum(rgb(s.backgroundColor))].sort((p, q) => q - p);
    return { text: b.textContent, className: b.className, ratio: (x + 0.05) / (y + 0.05) };
  });
}

// Retries until the page's view of a call's status agrees with a REST read taken just before and after
// it (the engine may move the call on in between); bounded by the caller's deadline.
async function statusAgrees(page, api, token, id) {
  const deadline = Date.now() + 20000;
  let last;
  while (Date.now() < deadline) {
    const before = (await api(`/api/v1/emergency/ambulance-requests/${id}`, { token })).status;
    const shown = await page.textContent(`#requests tr[data-request-id="${id}"] .req-status`).catch(() => null);
    const after = (await api(`/api/v1/emergency/ambulance-requests/${id}`, { token })).status;
    last = { before, shown, after };
    if (before === after && shown !== null && shown.replace(' ⚠', '') === before.replace(/_/g, ' ')) return before;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  throw new Error('the console never agreed with the API about call ' + id + ': ' + JSON.stringify(last));
}

test('a dispatcher takes a call by clicking the map, works it from the console and keeps keyboard focus while everything updates live', async () => {
  await withServer(async ({ server, browser, api }) => {
    const dispatcher = await login(api, 'dispatcher');
    const admin = await login(api, 'admin');
    const crewToken = await login(api, 'paramedic5');
    const unit = await api('/api/v1/emergency/my-unit', { token: crewToken });
    const at = unit.position ? { lat: unit.position.lat, lng: unit.position.lng } : unit.home;
    // The crew is on duty and reports from its station, then drives north.
    const crew = await openCrewSession(server.base, crewToken);
    await crew.command({ type: 'status', status: 'available' });
    let pos = { ...at };
    const ping = () => crew.command({ type: 'location', lat: pos.lat, lng: pos.lng, heading: 0, speed: 10 });
    await ping();

    const desk = await browser.newContext({ baseURL: server.base, viewport: { width: 1400, height: 900 } });
    const page = await desk.newPage();
    const errors = pageErrors(page);
    await signIn(page, '/console', 'dispatcher');
    const marker = `#map-units [data-unit-id="${unit.id}"]`;
    await page.waitForSelector(marker, WAIT);
    // No tile server configured: the base of the Leaflet map is the H3 grid.
    assert.equal(await page.getAttribute('#map', 'data-base'), 'cells');
    await page.waitForFunction(() => document.querySelectorAll('#map-cells polygon').length > 50, null, WAIT);

    // The call is placed by a click on the map, 60 px south-east of the crew's marker.
    const box = await page.locator(`${marker} circle`).boundingBox();
    await page.mouse.click(box.x + box.width / 2 + 60, box.y + box.height / 2 + 60);
    await page.waitForFunction(() => document.getElementById('call-lat').value !== '', null, WAIT);
    const lat = Number(await page.inputValue('#call-lat'));
    const lng = Number(await page.inputValue('#call-lng'));
    assert.ok(lat < pos.lat && lng > pos.lng, `the click placed the call south-east of the unit (${lat}, ${lng})`);
    assert.ok(Math.abs(lat - pos.lat) < 0.05 && Math.abs(lng - pos.lng) < 0.05, 'and near it');
    await page.waitForSelector('#draft-marker', WAIT);
    await page.fill('#call-name', 'Asha Rao');
    await page.fill('#call-phone', '+919845012345');
    await page.selectOption('#call-category', '2');
    await page.fill('#call-complaint', 'chest pain, sweating');
    await page.fill('#call-address', '4 Church Street');
    await page.click('#call-submit');
    await page.waitForFunction(() => document.getElementById('call-result').className === 'ok', null, WAIT);
    const id = Number(await page.getAttribute('#call-result', 'data-request-id'));
    const logged = await api(`/api/v1/emergency/ambulance-requests/${id}`, { token: dispatcher });
    assert.deepEqual([logged.pickup.lat, logged.pickup.lng], [lat, lng], 'the API has the clicked place');
    assert.equal(logged.category, 2);
    assert.equal(logged.patient_condition, 'chest pain, sweating');
    assert.equal(logged.patient_phone, '+919845012345');
    assert.equal(logged.pickup_address, '4 Church Street');
    await page.waitForSelector(`#requests tr[data-request-id="${id}"]`, WAIT);
    await page.waitForSelector(`#map-requests [data-request-id="${id}"]`, WAIT);
    await statusAgrees(page, api, dispatcher, id);

    // The opened call lists the five units to send with their ETAs, as the API ranks them.
    await page.waitForSelector(`#detail[data-request-id="${id}"]`, WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#recommended li').length > 0, null, WAIT);
    const ranked = await api(`/api/v1/emergency/ambulance-requests/${id}/recommended-units`, { token: dispatcher });
    const shown = await page.$$eval('#recommended li', (lis) => lis.map((li) => ({ id: Number(li.dataset.unitId), eta: Number(li.querySelector('.eta').dataset.seconds), text: li.textContent })));
    assert.ok(shown.length >= 1 && shown.length <= 5, JSON.stringify(shown));
    assert.deepEqual(shown.map((s) => s.id).sort(), ranked.units.map((u) => u.unit_id).sort(), 'the same units as the API');
    for (const s of shown) {
      const api_ = ranked.units.find((u) => u.unit_id === s.id);
      assert.ok(Math.abs(s.eta - api_.eta_s) <= Math.max(5, api_.eta_s * 0.05), `ETA of ${s.id}: ${s.eta} vs ${api_.eta_s}`);
      assert.match(s.text, /km · ETA \d/);
    }
    // The ETA ticks from live positions: the crew drives towards the call and its ETA drops.
    const mine = `#recommended li[data-unit-id="${unit.id}"] .eta`;
    await page.waitForSelector(mine, WAIT);
    const etaBefore = Number(await page.getAttribute(mine, 'data-seconds'));
    pos = { lat: (pos.lat + lat) / 2, lng: (pos.lng + lng) / 2 };
    await ping();
    await page.waitForFunction(([sel, before]) => Number(document.querySelector(sel).dataset.seconds) < before - 5, [mine, etaBefore], WAIT);

    // A note joins the timeline, and the API has it.
    await page.fill('#note-text', 'Caller says the side gate is open');
    await page.click('#note-submit');
    await page.waitForFunction(() => [...document.querySelectorAll('#timeline li.note')].some((li) => li.textContent.includes('side gate is open')), null, WAIT);
    const noted = await api(`/api/v1/emergency/ambulance-requests/${id}`, { token: dispatcher });
    assert.ok(noted.timeline.some((t) => t.event === 'note' && t.reason === 'Caller says the side gate is open'));

    // A unit's status set by hand with a reason: the row shows it, the API agrees, the audit log keeps it.
    const board = await api('/api/v1/emergency/board', { token: dispatcher });
    const other = board.units.find((u) => u.status === 'available' && u.id !== unit.id);
    await page.click(`#units tr[data-unit-id="${other.id}"] button.override`);
    await page.waitForSelector('#override[open]', WAIT);
    await page.selectOption('#override-status', 'off_duty');
    await page.fill('#override-reason', 'Crew called in sick');
    await page.click('#override-submit');
    await page.waitForSelector('#override', { state: 'hidden', timeout: WAIT.timeout });
    await page.waitForFunction(rowAgrees, { id: other.id, status: 'off_duty' }, WAIT);
    assert.equal((await api(`/api/v1/emergency/units/${other.id}`, { token: dispatcher })).status, 'off_duty');
    const audit = await api('/api/v1/admin/audit-log?subject_type=unit', { token: admin });
    const entry = audit.items.find((e) => e.action === 'unit_status_override' && e.subject_id === String(other.id));
    assert.ok(entry, 'the override is audited');
    assert.deepEqual(JSON.parse(entry.details), { from: 'available', to: 'off_duty', reason: 'Crew called in sick' });

    // A call far beyond every unit waits in the queue; it is off the map, so an arrow on the edge shows it.
    const far = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcher, body: { pickup: { lat: at.lat + 1.5, lng: at.lng + 1.5, address: 'Far away' }, category: 3 },
    });
    const farRow = `#requests tr[data-request-id="${far.id}"]`;
    await page.waitForFunction((sel) => /^#\d+ · \d+:\d\d$/.test(document.querySelector(sel + ' .queue')?.textContent || ''), farRow, WAIT);
    const queued = await api(`/api/v1/emergency/ambulance-requests/${far.id}`, { token: dispatcher });
    assert.ok(queued.queue, 'the API says it waits in the queue');
    assert.equal((await page.textContent(`${farRow} .queue`)).split(' · ')[0], '#' + queued.queue.position);
    const edge = await page.waitForSelector(`.map-edges .edge-mark[data-edge-id="${far.id}"]`, WAIT);
    const mapBox = await page.locator('#map').boundingBox();
    const edgeBox = await edge.boundingBox();
    assert.ok(edgeBox.x >= mapBox.x - 1 && edgeBox.x + edgeBox.width <= mapBox.x + mapBox.width + 1, 'the arrow is on the map');
    assert.ok(edgeBox.y >= mapBox.y - 1 && edgeBox.y + edgeBox.height <= mapBox.y + mapBox.height + 1, 'the arrow is on the map');

    // Keyboard: focus the far call's row; rows update in place (clocks, pings, statuses) and keep focus.
    await page.focus(farRow);
    const clock = await page.textContent(`${farRow} .arp`);
    for (let i = 0; i < 3; i++) { pos = { lat: pos.lat + 0.0002, lng: pos.lng }; await ping(); }
    await page.waitForFunction(([sel, c]) => document.querySelector(sel + ' .arp').textContent !== c, [farRow, clock], WAIT);
    await page.waitForFunction(([sel, la]) => Math.abs(Number(document.querySelector(sel).dataset.lat) - la) < 1e-9, [marker, pos.lat], WAIT);
    await api('/api/v1/emergency/units/' + other.id + '/status-override', { method: 'POST', token: dispatcher, body: { status: 'available', reason: 'Back' } });
    await page.waitForFunction(rowAgrees, { id: other.id, status: 'available' }, WAIT);
    assert.equal(await page.evaluate(() => document.activeElement.dataset.requestId), String(far.id), 'focus stayed on the row');
    // Enter opens the focused call.
    await page.keyboard.press('Enter');
    await page.waitForSelector(`#detail[data-request-id="${far.id}"]`, WAIT);
    assert.equal(await page.evaluate(() => document.activeElement.dataset.requestId), String(far.id));

    // A new category 1 call raises a visual and an audible alert (sound is allowed after the clicks above).
    const c1 = await api('/api/v1/emergency/ambulance-requests', {
      method: 'POST', token: dispatcher, body: { pickup: { lat: at.lat + 1.4, lng: at.lng + 1.4 }, category: 1 },
    });
    await page.waitForSelector(`#alerts .alert.c1[data-request-id="${c1.id}"]`, WAIT);
    await page.waitForFunction(() => Number(document.body.dataset.beeps || 0) >= 1, null, WAIT);

    // Pan and zoom: zooming in re-projects the marks and keeps the grid; labels never overlap.
    const before = await page.getAttribute(marker, 'transform');
    await page.click('.leaflet-control-zoom-in');
    await page.waitForFunction(([sel, t]) => document.querySelector(sel).getAttribute('transform') !== t, [marker, before], WAIT);
    await page.waitForFunction(() => document.querySelectorAll('#map-cells polygon').length > 10, null, WAIT);
    const overlaps = await page.evaluate(() => {
      const shown = [...document.querySelectorAll('#map text.label:not(.label-off)')].map((t) => t.getBoundingClientRect()).filter((r) => r.width > 0);
      let n = 0;
      for (let i = 0; i < shown.length; i++) for (let j = i + 1; j < shown.length; j++) {
        const a = shown[i], b = shown[j];
        if (a.left < b.right && a.right > b.left && a.top < b.bottom && a.bottom > b.top) n++;
      }
      return n;
    });
    assert.equal(overlaps, 0, 'no two shown labels overlap');

    await shot(page, 'console');
    // Every badge on the page (categories, unit statuses) has a contrast of at least 4.5:1.
    const contrasts = await page.evaluate(badgeContrasts);
    assert.ok(contrasts.length > 10, 'badges are shown');
    for (const c of contrasts) assert.ok(c.ratio >= 4.5, `${c.text} (${c.className}): ${c.ratio.toFixed(2)}`);
    crew.close();
    assert.deepEqual(errors, [], 'no script errors on the console');
  });
});
