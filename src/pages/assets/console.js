// The dispatcher console: the board read once (and again after each reconnect), then every change from
// the `dispatch` websocket topic; no polling. The map is the shared Leaflet map (map.js): tiles when
// configured, else the H3 grid. A dispatcher takes calls (placed by a click on the map or typed
// coordinates), works the queue, sees the five units to send with ETAs that tick from live positions,
// assigns, adds notes, cancels or closes calls with a reason, and sets a unit's availability with an
// audited reason. New C1 calls and predicted breaches raise a visual and an audible alert.
// A unit's status comes from REST reads and `unit_status` events only: a location ping moves a unit and
// never changes its status (docs/websocket.md, "Unit status"). Rows are updated in place, so keyboard
// focus survives live updates; Enter on a call's row opens it.
'use strict';
(function () {
  const M = window.OneMedi;
  const me = M.requireLogin(['dispatcher', 'admin']);
  if (!me) return;

  const FINAL = new Set(['closed', 'cancelled']);
  // Before the crew reaches the patient a call may be cancelled; once handed over it may be closed.
  const CANCELLABLE = new Set(['requested', 'offered', 'queued', 'assigned', 'en_route', 'no_unit_available', 'escalated']);
  const AMBULANCE = new Set(['als', 'bls']);
  const units = new Map(); // id → unit view (+ `seenMs`)
  const requests = new Map(); // id → request view (+ `fetchedMs`)
  const breaches = new Map(); // request id → breach_predicted event
  const etaPerKm = {}; // unit kind → seconds per km of great circle (from the server's speed profile)
  let recommended = null; // { requestId, units: [RecommendedUnit] }
  let selected = null;
  let map = null;
  let draft = null; // the new call's marker

  const $ = (id) => document.getElementById(id);
  const words = (s) => String(s || '').replace(/_/g, ' ');

  // ------------------------------------------------------------------------------------ geometry

  function distanceM(a, b) {
    const rad = Math.PI / 180;
    const dLat = (b[0] - a[0]) * rad, dLng = (b[1] - a[1]) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * rad) * Math.cos(b[0] * rad) * Math.sin(dLng / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function unitAt(u) {
    return u && u.position ? [u.position.lat, u.position.lng] : null;
  }

  // Seconds for `u` to reach `to` from where it is now: the server's speed profile (seconds per km of
  // great circle, learnt from its answers) applied to the live position.
  function liveEta(u, to, perKm) {
    const at = unitAt(u);
    const k = perKm || etaPerKm[u && u.kind];
    if (!at || !k) return null;
    return distanceM(at, to) / 1000 * k;
  }

  // The assigned unit's ETA to its call, from its live position (before it is on scene).
  function callEta(r) {
    if (!r.unit || (r.times && r.times.on_scene)) return null;
    const u = units.get(r.unit.id) || r.unit;
    const pickup = [r.pickup.lat, r.pickup.lng];
    let k = etaPerKm[u.kind];
    // The call's own view says what the profile gave at its position when it was read.
    if (!k && r.unit.eta_s && r.unit.position) {
      const d = distanceM([r.unit.position.lat, r.unit.position.lng], pickup);
      if (d > 50) k = r.unit.eta_s / (d / 1000);
    }
    const live = liveEta(u, pickup, k);
    return live === null ? (r.unit.eta_s ?? null) : live;
  }

  // ------------------------------------------------------------------------------------ alerts

  let audio = null;
  let beeps = 0;
  // Browsers start sound only after a gesture: the first click or key press on the page unlocks it.
  function unlockAudio() {
    try {
      if (!audio) audio = new AudioContext();
      if (audio.state === 'suspended') audio.resume().catch(() => {});
    } catch (_) {
      audio = null;
    }
  }
  document.addEventListener('pointerdown', unlockAudio, true);
  document.addEventListener('keydown', unlockAudio, true);

  // Two short tones (C1: higher, three times). Counted on the page once actually played.
  function beep(kind) {
    if (!audio) unlockAudio();
    if (!audio || audio.state !== 'running') return;
    const count = kind === 'c1' ? 3 : 2;
    const now = audio.currentTime;
    for (let i = 0; i < count; i++) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = 'square';
      osc.frequency.value = kind === 'c1' ? 988 : 740;
      gain.gain.setValueAtTime(0.0001, now + i * 0.3);
      gain.gain.exponentialRampToValueAtTime(0.2, now + i * 0.3 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, now + i * 0.3 + 0.22);
      osc.connect(gain).connect(audio.destination);
      osc.start(now + i * 0.3);
      osc.stop(now + i * 0.3 + 0.25);
    }
    beeps++;
    document.body.dataset.beeps = String(beeps);
  }

  const alerts = new Map(); // key → { requestId, text, kind }; dropped when the call ends or is opened

  function dropAlerts(requestId) {
    for (const [key, a] of alerts) if (a.requestId === requestId) alerts.delete(key);
  }
  function raise(key, requestId, kind, text) {
    if (alerts.has(key)) return;
    alerts.set(key, { requestId, kind, text });
    drawAlerts();
    beep(kind);
  }

  function drawAlerts() {
    const box = $('alerts');
    box.textContent = '';
    for (const [key, a] of alerts) {
      box.append(M.el('button', {
        type: 'button', class: 'alert ' + a.kind, 'data-request-id': a.requestId, 'data-alert': key,
        onclick: () => { alerts.delete(key); open(a.requestId); drawAlerts(); },
      }, a.text));
    }
  }

  function breachText(ev) {
    return '⚠ Call #' + ev.request_id + ' (C' + ev.category + ') will likely miss its ' + M.clock(ev.target_s) + ' target'
      + (ev.predicted_s ? ': predicted ' + M.clock(ev.predicted_s) : '') + (ev.reason ? ' — ' + ev.reason : '');
  }

  // --------------------------------------------------------------------------------------- the map

  const unitMarks = new Map();
  const requestMarks = new Map();

  function drawUnitMark(u) {
    if (!map) return;
    const at = unitAt(u);
    let g = unitMarks.get(u.id);
    if (!at) { if (g) { g.remove(); unitMarks.delete(u.id); } return; }
    const title = u.call_sign + ' · ' + words(u.status) + ' · seen ' + M.age(seenAge(u)) + ' ago';
    if (!g) {
      g = map.mark({ 'data-unit-id': u.id }, M.svg('circle', { r: 9 }), u.call_sign, title, at[0], at[1], () => pickUnit(u.id));
      map.layer('units').append(g);
      unitMarks.set(u.id, g);
    } else {
      map.place(g, at[0], at[1]);
      g.querySelector('title').textContent = title;
    }
    g.setAttribute('class', 'mark unit-marker st-' + u.status + (selected !== null ? ' pickable' : ''));
    g.dataset.status = u.status;
  }

  function drawRequestMark(r) {
    if (!map) return;
    let g = requestMarks.get(r.id);
    const cls = 'mark incident-marker cat-' + r.category + (isBreach(r) ? ' breach' : '') + (selected === r.id ? ' selected' : '');
    const title = 'Call #' + r.id + ' · C' + r.category + ' · ' + words(r.status);
    if (!g) {
      g = map.mark({ 'data-request-id': r.id }, M.svg('path', { d: 'M0,-13 L12,8 L-12,8 Z' }), '#' + r.id, title, r.pickup.lat, r.pickup.lng, () => open(r.id));
      const cat = M.svg('text', { x: 0, y: 5, 'text-anchor': 'middle', class: 'cat' });
      cat.textContent = r.category;
      g.insertBefore(cat, g.querySelector('text.label'));
      map.layer('requests').append(g);
      requestMarks.set(r.id, g);
    }
    g.setAttribute('class', cls);
    g.querySelector('title').textContent = title;
  }

  function drawMap() {
    if (!map) return;
    for (const [id, g] of unitMarks) if (!units.has(id)) { g.remove(); unitMarks.delete(id); }
    for (const [id, g] of requestMarks) if (!requests.has(id)) { g.remove(); requestMarks.delete(id); }
    for (const r of requests.values()) drawRequestMark(r);
    for (const u of units.values()) drawUnitMark(u);
    map.edges([...requests.values()].map((r) => ({
      id: r.id, lat: r.pickup.lat, lng: r.pickup.lng, text: 'C' + r.category + ' #' + r.id,
      className: 'cat-' + r.category + (isBreach(r) ? ' breach' : ''), title: 'Call #' + r.id + ' is off the map: show it',
      onclick: () => { map.panTo(r.pickup.lat, r.pickup.lng); open(r.id); },
    })));
    map.declutter();
  }

  function placeDraft(lat, lng) {
    if (!map) return;
    if (!draft) {
      draft = map.mark({ id: 'draft-marker', class: 'draft-marker' }, M.svg('circle', { r: 7 }), 'new call', 'The new call', lat, lng, null);
      map.layer('draft').append(draft);
    } else {
      map.place(draft, lat, lng);
    }
  }

  function clearDraft() {
    if (draft) draft.remove();
    draft = null;
  }

  // ------------------------------------------------------------------------------------ the tables

  function seenAge(u) {
    return u.seenMs ? (Date.now() - u.seenMs) / 1000 : null;
  }

  function isBreach(r) {
    return breaches.has(r.id) || (r.clock && r.clock.breach_predicted);
  }

  function elapsed(r) {
    if (!r.clock) return 0;
    if (r.times && r.times.on_scene) return r.clock.elapsed_s;
    return r.clock.elapsed_s + (Date.now() - r.fetchedMs) / 1000;
  }

  // Sets a node's text only when it changed (no needless DOM writes).
  function text(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }

  // Puts `rows` (in order) into `body`, moving only rows out of place; focus inside stays where it was.
  function order(body, rows) {
    const focused = document.activeElement;
    let at = body.firstElementChild;
    for (const row of rows) {
      if (row === at) { at = at.nextElementSibling; continue; }
      body.insertBefore(row, at);
    }
    while (at) { const next = at.nextElementSibling; at.remove(); at = next; }
    if (focused && focused !== document.activeElement && body.contains(focused)) focused.focus();
  }

  const unitRows = new Map();
  function unitRow(u) {
    let tr = unitRows.get(u.id);
    if (!tr) {
      tr = M.el('tr', { 'data-unit-id': u.id, tabindex: 0 }, [
        M.el('td', {}, [M.el('span', { class: 'dot' }), ' ', M.el('span', { class: 'call-sign' }), M.el('small', { class: 'muted kind' })]),
        M.el('td', {}, M.el('span', { class: 'badge status unit-status' })),
        M.el('td', { class: 'seen' }),
        M.el('td', { class: 'job' }),
        M.el('td', { class: 'actions' }, [
          M.el('button', { type: 'button', class: 'assign', onclick: () => pickUnit(u.id) }, 'Assign'),
          ' ',
          M.el('button', { type: 'button', class: 'override', onclick: () => openOverride(u.id), title: 'Set this unit’s status by hand, with a reason' }, 'Status…'),
        ]),
      ]);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' && e.target === tr) { const at = unitAt(units.get(u.id)); if (at) map.panTo(at[0], at[1]); } });
      unitRows.set(u.id, tr);
    }
    const job = u.job ? (u.job.kind === 'ambulance_request' ? '#' + u.job.id : u.job.kind + ' ' + u.job.id) : '';
    const canAssign = selected !== null && requests.has(selected) && u.status === 'available';
    const age = seenAge(u);
    tr.className = 'st-' + u.status;
    tr.querySelector('.dot').className = 'dot st-' + u.status;
    text(tr.querySelector('.call-sign'), u.call_sign);
    text(tr.querySelector('.kind'), ' ' + u.kind.toUpperCase());
    const badge = tr.querySelector('.unit-status');
    badge.className = 'badge status unit-status st-' + u.status;
    text(badge, words(u.status));
    const seen = tr.querySelector('.seen');
    text(seen, age === null ? 'no fix' : M.age(age));
    seen.classList.toggle('stale', age !== null && age > 120);
    text(tr.querySelector('.job'), job);
    const assign = tr.querySelector('button.assign');
    assign.disabled = !canAssign;
    assign.title = canAssign ? 'Assign to the selected call' : 'Select an open call first';
    return tr;
  }

  function drawBoard() {
    const sorted = [...units.values()].sort((a, b) => a.call_sign.localeCompare(b.call_sign));
    for (const id of [...unitRows.keys()]) if (!units.has(id)) unitRows.delete(id);
    order($('units'), sorted.map(unitRow));
  }

  const requestRows = new Map();
  function requestRow(r) {
    let tr = requestRows.get(r.id);
    if (!tr) {
      tr = M.el('tr', { 'data-request-id': r.id, tabindex: 0, onclick: () => open(r.id) }, [
        M.el('td', {}, M.el('span', { class: 'badge cat' })),
        M.el('td', { class: 'where' }),
        M.el('td', { class: 'req-status' }),
        M.el('td', { class: 'queue' }),
        M.el('td', { class: 'arp' }),
        M.el('td', { class: 'eta' }),
      ]);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter' && e.target === tr) { e.preventDefault(); open(r.id); } });
      requestRows.set(r.id, tr);
    }
    tr.className = 'request cat-' + r.category + (isBreach(r) ? ' breach' : '') + (selected === r.id ? ' selected' : '');
    tr.setAttribute('aria-selected', selected === r.id ? 'true' : 'false');
    const badge = tr.querySelector('.badge');
    badge.className = 'badge cat cat-' + r.category;
    text(badge, 'C' + r.category);
    text(tr.querySelector('.where'), '#' + r.id + ' · ' + (r.pickup_address || r.pickup.lat.toFixed(4) + ', ' + r.pickup.lng.toFixed(4))
      + (r.patient_condition ? ' · ' + r.patient_condition : ''));
    text(tr.querySelector('.req-status'), words(r.status) + (isBreach(r) ? ' ⚠' : ''));
    tickRequestRow(tr, r);
    return tr;
  }

  // The values of a call's row that move with time and positions.
  function tickRequestRow(tr, r) {
    const q = r.queue;
    text(tr.querySelector('.queue'), q ? '#' + q.position + ' · ' + M.clock(q.waited_s + (Date.now() - r.fetchedMs) / 1000) : '');
    const target = r.clock ? r.clock.target.p90_s : null;
    const e = elapsed(r);
    const arp = tr.querySelector('.arp');
    text(arp, M.clock(e) + (target ? ' / ' + M.clock(target) : ''));
    arp.classList.toggle('over', Boolean(target && e > target));
    const eta = callEta(r);
    text(tr.querySelector('.eta'), r.unit ? r.unit.call_sign + (eta !== null ? ' · ' + M.age(eta) : '') : '—');
  }

  function drawRequestList() {
    const open = [...requests.values()].sort((a, b) => a.category - b.category
      || (a.queue ? a.queue.position : 1e9) - (b.queue ? b.queue.position : 1e9) || a.id - b.id);
    for (const id of [...requestRows.keys()]) if (!requests.has(id)) requestRows.delete(id);
    text($('request-count'), '(' + open.length + (open.some((r) => r.queue) ? ', ' + open.filter((r) => r.queue).length + ' queued' : '') + ')');
    order($('requests'), open.map(requestRow));
  }

  // The five units to send to the selected call, re-ranked by their live ETAs.
  const recommendedRows = new Map();
  function drawRecommended() {
    const list = $('recommended');
    const r = selected !== null ? requests.get(selected) : null;
    if (!r || !recommended || recommended.requestId !== r.id) { order(list, []); return; }
    const pickup = [r.pickup.lat, r.pickup.lng];
    const rows = recommended.units.map((c) => {
      const u = units.get(c.unit_id);
      const eta = u ? liveEta(u, pickup, c.eta_per_km_s) : c.eta_s;
      const distance = u && unitAt(u) ? distanceM(unitAt(u), pickup) : c.distance_m;
      return { c, u, eta: eta === null ? c.eta_s : eta, distance };
    }).sort((a, b) => a.eta - b.eta);
    const items = rows.map(({ c, u, eta, distance }) => {
      let li = recommendedRows.get(c.unit_id);
      if (!li) {
        li = M.el('li', { 'data-unit-id': c.unit_id, tabindex: 0 }, [
          M.el('b', { class: 'call-sign' }, c.call_sign), ' ', M.el('small', { class: 'muted' }, c.kind.toUpperCase()), ' · ',
          M.el('span', { class: 'distance' }), ' · ETA ', M.el('span', { class: 'eta' }), ' ',
          M.el('button', { type: 'button', class: 'assign-recommended', onclick: () => pickUnit(c.unit_id) }, 'Assign'),
        ]);
        recommendedRows.set(c.unit_id, li);
      }
      text(li.querySelector('.distance'), (distance / 1000).toFixed(1) + ' km');
      text(li.querySelector('.eta'), M.age(eta));
      li.querySelector('.eta').dataset.seconds = Math.round(eta);
      li.querySelector('button').disabled = Boolean(u && u.status !== 'available');
      return li;
    });
    for (const id of [...recommendedRows.keys()]) if (!recommended.units.some((c) => c.unit_id === id)) recommendedRows.delete(id);
    order(list, items);
    list.dataset.requestId = r.id;
  }

  let recommending = null;
  function loadRecommended() {
    if (selected === null || recommending) return;
    const id = selected;
    recommending = setTimeout(async () => {
      try {
        const got = await M.api('/api/v1/emergency/ambulance-requests/' + id + '/recommended-units');
        for (const c of got.units) etaPerKm[c.kind] = c.eta_per_km_s;
        if (selected === id) { recommended = { requestId: id, units: got.units }; drawRecommended(); }
      } catch (_) {
        // The call ended or the connection dropped: the next change asks again.
      } finally {
        recommending = null;
      }
    }, 150);
  }

  async function drawDetail() {
    const box = $('detail');
    if (selected === null) { box.hidden = true; return; }
    const id = selected;
    let r;
    try {
      r = await M.api('/api/v1/emergency/ambulance-requests/' + id);
    } catch (e) {
      if (selected === id) box.hidden = true;
      return;
    }
    if (selected !== id) return;
    box.hidden = false;
    box.dataset.requestId = r.id;
    box.dataset.status = r.status;
    text($('detail-title'), 'Call #' + r.id + ' · C' + r.category + ' · ' + words(r.status)
      + (r.queue ? ' · queue #' + r.queue.position : ''));
    const caller = [r.patient_name, r.patient_phone].filter(Boolean).join(', ');
    text($('detail-summary'), (caller ? 'Caller: ' + caller + ' — ' : '') + (r.patient_condition || 'no complaint given') + ' — '
      + (r.pickup_address || r.pickup.lat.toFixed(5) + ', ' + r.pickup.lng.toFixed(5))
      + (r.unit ? ' · unit ' + r.unit.call_sign + ' (' + words(r.unit.status) + ')' : ' · no unit')
      + (r.cancel_reason ? ' · cancelled: ' + r.cancel_reason : ''));
    $('cancel-call').disabled = !CANCELLABLE.has(r.status);
    $('close-call').disabled = r.status !== 'handed_over';
    const tl = $('timeline');
    tl.textContent = '';
    for (const t of r.timeline || []) {
      const at = new Date(M.utcMs(t.at));
      const note = t.event === 'note';
      tl.append(M.el('li', { class: note ? 'note' : null, 'data-event': t.event }, note ? [
        M.el('time', {}, at.toLocaleTimeString()), ' ', M.el('b', {}, 'note'), ': ', t.reason || '',
      ] : [
        M.el('time', {}, at.toLocaleTimeString()), ' ',
        M.el('b', {}, words(t.event)), ' → ', words(t.to_status),
        t.actor_unit_id ? ' (unit ' + (units.get(t.actor_unit_id) || { call_sign: '#' + t.actor_unit_id }).call_sign + ')' : '',
        t.reason ? ' — ' + t.reason : '',
      ]));
    }
  }

  function redraw() {
    drawMap();
    drawBoard();
    drawRequestList();
    drawAlerts();
    drawRecommended();
  }

  // ----------------------------------------------------------------------------------- actions

  function open(id) {
    if (selected !== id) {
      selected = id;
      recommended = null;
      text($('assign-result'), '');
      text($('detail-result'), '');
    }
    redraw();
    drawDetail();
    loadRecommended();
  }

  async function pickUnit(unitId) {
    if (selected === null) return;
    const u = units.get(unitId);
    const out = $('assign-result');
    out.className = '';
    out.textContent = 'Assigning ' + (u ? u.call_sign : '#' + unitId) + '…';
    try {
      const r = await M.api('/api/v1/emergency/ambulance-requests/' + selected + '/assign', { method: 'POST', body: { unit_id: unitId } });
      out.textContent = (u ? u.call_sign : '#' + unitId) + ' assigned to #' + r.id + '.';
      out.className = 'ok';
      putRequest(r);
      drawDetail();
    } catch (e) {
      out.textContent = 'Not assigned: ' + e.message;
      out.className = 'error';
    }
  }

  function result(node, message, ok) {
    node.textContent = message;
    node.className = ok ? 'ok' : 'error';
  }

  function fieldErrors(e) {
    return e.details && typeof e.details === 'object' ? ' (' + Object.entries(e.details).map(([k, v]) => k + ': ' + v).join('; ') + ')' : '';
  }

  function onMapClick(lat, lng) {
    $('take-call').open = true;
    $('call-lat').value = lat.toFixed(6);
    $('call-lng').value = lng.toFixed(6);
    placeDraft(lat, lng);
  }

  function typedPoint() {
    const lat = Number($('call-lat').value), lng = Number($('call-lng').value);
    const ok = $('call-lat').value.trim() !== '' && $('call-lng').value.trim() !== '' && isFinite(lat) && isFinite(lng)
      && Math.abs(lat) <= 90 && Math.abs(lng) <= 180;
    return ok ? [lat, lng] : null;
  }

  function onTypedPoint() {
    const p = typedPoint();
    if (p) placeDraft(p[0], p[1]);
  }

  async function takeCall(ev) {
    ev.preventDefault();
    const out = $('call-result');
    const p = typedPoint();
    if (!p) { result(out, 'Place the call: click the map or type its latitude and longitude.', false); return; }
    const patient = {};
    const name = $('call-name').value.trim(), phone = $('call-phone').value.trim(), complaint = $('call-complaint').value.trim();
    if (name) patient.name = name;
    if (phone) patient.phone = phone;
    if (complaint) patient.condition = complaint;
    const pickup = { lat: p[0], lng: p[1] };
    const address = $('call-address').value.trim();
    if (address) pickup.address = address;
    const body = { pickup, category: Number($('call-category').value) };
    if (Object.keys(patient).length) body.patient = patient;
    $('call-submit').disabled = true;
    try {
      const r = await M.api('/api/v1/emergency/ambulance-requests', { method: 'POST', body });
      result(out, 'Call #' + r.id + ' logged.', true);
      out.dataset.requestId = r.id;
      $('call-form').reset();
      $('call-category').value = '2';
      clearDraft();
      putRequest(r);
      open(r.id);
    } catch (e) {
      result(out, 'Not logged: ' + e.message + fieldErrors(e), false);
    } finally {
      $('call-submit').disabled = false;
    }
  }

  async function addNote(ev) {
    ev.preventDefault();
    if (selected === null) return;
    const input = $('note-text');
    const body = { text: input.value };
    try {
      await M.api('/api/v1/emergency/ambulance-requests/' + selected + '/notes', { method: 'POST', body });
      input.value = '';
      result($('detail-result'), 'Note added.', true);
      drawDetail();
    } catch (e) {
      result($('detail-result'), 'Note not added: ' + e.message + fieldErrors(e), false);
    }
  }

  async function endCall(how) {
    if (selected === null) return;
    const id = selected;
    const reason = $('end-reason').value.trim();
    const out = $('detail-result');
    if (!reason) { result(out, 'Give a reason first.', false); return; }
    try {
      if (how === 'cancel') {
        putRequest(await M.api('/api/v1/emergency/ambulance-requests/' + id + '/cancel', { method: 'POST', body: { reason } }));
      } else {
        // Closing a handed-over call is its unit's last step (back in service); the reason goes on the
        // timeline first.
        const r = requests.get(id);
        if (!r || !r.unit) { result(out, 'This call has no unit to close it with.', false); return; }
        await M.api('/api/v1/emergency/ambulance-requests/' + id + '/notes', { method: 'POST', body: { text: 'Closed: ' + reason } });
        await M.api('/api/v1/emergency/units/' + r.unit.id + '/status', { method: 'PUT', body: { status: 'back_in_service' } });
        refetchRequest(id);
      }
      $('end-reason').value = '';
      result(out, (how === 'cancel' ? 'Cancelled' : 'Closed') + ' call #' + id + '.', true);
      drawDetail();
    } catch (e) {
      result(out, 'Not ' + (how === 'cancel' ? 'cancelled' : 'closed') + ': ' + e.message + fieldErrors(e), false);
    }
  }

  let overrideUnit = null;
  function openOverride(unitId) {
    const u = units.get(unitId);
    if (!u) return;
    overrideUnit = unitId;
    text($('override-title'), 'Set ' + u.call_sign + '’s status (now ' + words(u.status) + ')');
    $('override-status').value = u.status === 'available' ? 'busy' : 'available';
    $('override-reason').value = '';
    text($('override-result'), '');
    $('override').showModal();
    $('override-reason').focus();
  }

  async function submitOverride(ev) {
    ev.preventDefault();
    const out = $('override-result');
    const unitId = overrideUnit;
    try {
      const u = await M.api('/api/v1/emergency/units/' + unitId + '/status-override', {
        method: 'POST', body: { status: $('override-status').value, reason: $('override-reason').value },
      });
      const known = units.get(u.id);
      if (known) { known.status = u.status; if (u.status !== 'assigned') known.job = null; }
      $('override').close();
      drawBoard();
      drawMap();
      const row = unitRows.get(unitId);
      if (row) row.focus();
    } catch (e) {
      result(out, 'Not set: ' + e.message + fieldErrors(e), false);
    }
  }

  // ---------------------------------------------------------------------------------- state in

  function putUnit(u) {
    u.seenMs = u.position ? Date.now() - u.position.last_seen_age_s * 1000 : null;
    units.set(u.id, u);
  }

  function putRequest(r) {
    r.fetchedMs = Date.now();
    if (FINAL.has(r.status)) { requests.delete(r.id); dropAlerts(r.id); } else requests.set(r.id, r);
    redraw();
  }

  // Events that arrive while the board is read are held and applied on top of it once it is in: each
  // was announced after its change committed, so it is at least as new as what the read saw.
  let boardReads = 0;
  let held = [];

  async function loadBoard() {
    boardReads++;
    try {
      await applyBoard(await M.api('/api/v1/emergency/board'));
    } finally {
      boardReads--;
      if (boardReads === 0) {
        const waiting = held;
        held = [];
        for (const ev of waiting) onEvent(ev);
      }
    }
  }

  async function applyBoard(board) {
    units.clear();
    requests.clear();
    for (const u of board.units) putUnit(u);
    for (const r of board.requests) { r.fetchedMs = Date.now(); requests.set(r.id, r); }
    // Calls that ended while the connection was down take their alerts with them.
    for (const a of [...alerts.values()]) if (!requests.has(a.requestId)) dropAlerts(a.requestId);
    if (!map) {
      const pts = board.units.map((u) => unitAt(u) || [u.home.lat, u.home.lng]);
      map = await M.createMap($('map'), {
        layers: ['draft', 'requests', 'units'], labelOrder: ['draft', 'requests', 'units'], onClick: onMapClick,
        view: pts.length ? { bounds: pts, maxZoom: 14 } : { center: [12.9716, 77.5946], zoom: 12 },
      });
    }
    redraw();
    drawDetail();
    if (selected !== null) loadRecommended();
  }

  const refetching = new Map();
  function refetchRequest(id) {
    if (refetching.has(id)) return;
    refetching.set(id, setTimeout(async () => {
      refetching.delete(id);
      try {
        putRequest(await M.api('/api/v1/emergency/ambulance-requests/' + id));
      } catch (e) {
        if (e.status === 404) { requests.delete(id); dropAlerts(id); redraw(); }
      }
      if (selected === id) drawDetail();
    }, 100));
  }

  function requestIdOf(ev) {
    if (typeof ev.request_id === 'number') return ev.request_id;
    for (const key of ['request', 'entity', 'to', 'from']) {
      const v = ev[key];
      if (v && typeof v === 'object' && v.kind === 'ambulance_request') return v.id;
      if (typeof v === 'string' && v.startsWith('ambulance_request:')) return Number(v.split(':')[1]);
    }
    return null;
  }

  // An ambulance first met in a ping (created after the board was read) is read over REST, for its
  // call sign and status; its events that arrive meanwhile wait for that read, as with the board.
  const unitReads = new Map(); // unit id → held events
  function readUnit(id, ev) {
    const waiting = unitReads.get(id);
    if (waiting) { waiting.push(ev); return; }
    unitReads.set(id, [ev]);
    M.api('/api/v1/emergency/units/' + id).then((u) => {
      if (!units.has(id)) putUnit(u);
    }, () => {}).finally(() => {
      const events = unitReads.get(id) || [];
      unitReads.delete(id);
      if (!units.has(id)) return;
      for (const e of events) onEvent(e);
      drawMap();
      drawBoard();
    });
  }

  function onEvent(ev) {
    if (boardReads > 0) { held.push(ev); return; }
    switch (ev.type) {
      case 'unit_location': {
        const u = units.get(ev.unit_id);
        if (!u) {
          if (String(ev.kind).startsWith('ambulance')) readUnit(ev.unit_id, ev);
          return;
        }
        u.position = { lat: ev.lat, lng: ev.lng, heading: ev.heading, speed_mps: ev.speed };
        u.seenMs = Date.now();
        drawUnitMark(u);
        unitRow(u);
        tick();
        if (map) map.declutter();
        return;
      }
      case 'unit_status': {
        const u = units.get(ev.unit_id);
        if (!u) {
          if (unitReads.has(ev.unit_id)) unitReads.get(ev.unit_id).push(ev);
          return;
        }
        u.status = ev.status;
        if (ev.status === 'available' || ev.status === 'off_duty' || ev.status === 'busy') u.job = null;
        drawUnitMark(u);
        unitRow(u);
        drawRecommended();
        // Supply changed: who to send may have too.
        loadRecommended();
        return;
      }
      case 'request_created':
        if (ev.category === 1) raise('c1:' + ev.request_id, ev.request_id, 'c1', '🚨 New C1 call #' + ev.request_id + ' — life-threatening');
        refetchRequest(ev.request_id);
        return;
      case 'breach_predicted':
        breaches.set(ev.request_id, ev);
        raise('breach:' + ev.request_id, ev.request_id, 'breach', breachText(ev));
        refetchRequest(ev.request_id);
        return;
      case 'unit_assigned': {
        const id = requestIdOf(ev);
        const u = units.get(ev.unit);
        if (u && id) u.job = { kind: 'ambulance_request', id };
        if (id) refetchRequest(id);
        return;
      }
      case 'preempted': {
        for (const side of [ev.from, ev.to]) if (side && side.kind === 'ambulance_request') refetchRequest(side.id);
        return;
      }
      default: {
        const id = requestIdOf(ev);
        if (id) refetchRequest(id);
      }
    }
  }

  const live = new M.Live({
    onOpen: () => loadBoard().catch((e) => { $('alerts').textContent = 'Board not loaded: ' + e.message; }),
    onEvent,
    onError: (e) => { $('alerts').textContent = 'Live updates: ' + (e.message || e.code); },
  });
  live.follow('dispatch');

  $('call-form').addEventListener('submit', takeCall);
  $('call-lat').addEventListener('change', onTypedPoint);
  $('call-lng').addEventListener('change', onTypedPoint);
  $('note-form').addEventListener('submit', addNote);
  $('cancel-call').addEventListener('click', () => endCall('cancel'));
  $('close-call').addEventListener('click', () => endCall('close'));
  $('override-form').addEventListener('submit', submitOverride);
  $('override-cancel').addEventListener('click', () => $('override').close());

  // Clocks, waits, last-seen ages and ETAs move on their own between events (text only: rows stay put).
  function tick() {
    for (const u of units.values()) {
      const tr = unitRows.get(u.id);
      if (!tr) continue;
      const td = tr.querySelector('.seen');
      const age = seenAge(u);
      text(td, age === null ? 'no fix' : M.age(age));
      td.classList.toggle('stale', age !== null && age > 120);
    }
    for (const r of requests.values()) {
      const tr = requestRows.get(r.id);
      if (tr) tickRequestRow(tr, r);
    }
    drawRecommended();
  }
  setInterval(tick, 1000);
})();
