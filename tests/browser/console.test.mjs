// Browser test of /console against a real server (see harness.mjs): a dispatcher follows a unit while its
// crew, from a websocket session and REST like the crew's app, accepts a call and works it step by step
// and keeps reporting its position. After every step the console must show what the API says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { login } from './server.mjs';
import { openCrewSession } from './crew.mjs';
import { WAIT, withServer, signIn, pageErrors } from './harness.mjs';

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
    await page.click(`#requests li[data-request-id="${far.id}"]`);
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
