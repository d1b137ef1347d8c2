// The dispatcher console: the board read once (and again after each reconnect), then every change from
// the `dispatch` websocket topic. An SVG map drawn over H3 cells from /api/v1/map/cells (no tiles).
// A unit's status comes from REST reads and `unit_status` events only: a location ping moves a unit and
// never changes its status (docs/websocket.md, "Unit status").
'use strict';
(function () {
  const M = window.OneMedi;
  const me = M.requireLogin(['dispatcher', 'admin']);
  if (!me) return;

  const FINAL = new Set(['closed', 'cancelled']);
  const W = 1000;
  const units = new Map(); // id → unit view (+ `seenMs`)
  const requests = new Map(); // id → request view (+ `fetchedMs`)
  const breaches = new Map(); // request id → breach_predicted event
  let selected = null;
  let projection = null;
  let mapCenter = null;

  const $ = (id) => document.getElementById(id);
  const mapSvg = $('map');

  // ---------------------------------------------------------------------------------------- the map

  function project(lat, lng) {
    if (!projection) return null;
    const p = projection;
    return [(lng - p.minLng) * p.k * p.scale, (p.maxLat - lat) * p.scale];
  }

  async function drawBasemap(center) {
    const near = center.lat.toFixed(2) + ',' + center.lng.toFixed(2);
    const cells = await M.api('/api/v1/map/cells?near=' + near + '&radius_km=14&resolution=7');
    let minLat = 90, maxLat = -90, minLng = 180, maxLng = -180;
    for (const c of cells.cells) for (const [la, ln] of c.boundary) {
      minLat = Math.min(minLat, la); maxLat = Math.max(maxLat, la);
      minLng = Math.min(minLng, ln); maxLng = Math.max(maxLng, ln);
    }
    const k = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    const scale = W / ((maxLng - minLng) * k);
    projection = { minLng, maxLat, k, scale };
    const h = (maxLat - minLat) * scale;
    mapSvg.setAttribute('viewBox', '0 0 ' + W + ' ' + Math.round(h));
    const g = $('map-cells');
    g.textContent = '';
    for (const c of cells.cells) {
      const pts = c.boundary.map(([la, ln]) => project(la, ln).map((v) => v.toFixed(1)).join(',')).join(' ');
      g.append(M.svg('polygon', { points: pts, class: c.cell === cells.center_cell ? 'cell center' : 'cell' }));
    }
  }

  function unitPosition(u) {
    return u.position ? [u.position.lat, u.position.lng] : null;
  }

  function drawUnits() {
    const g = $('map-units');
    g.textContent = '';
    for (const u of units.values()) {
      const at = unitPosition(u);
      const xy = at && project(at[0], at[1]);
      if (!xy) continue;
      const marker = M.svg('g', {
        class: 'unit-marker st-' + u.status + (selected ? ' pickable' : ''),
        transform: 'translate(' + xy[0].toFixed(1) + ',' + xy[1].toFixed(1) + ')',
        'data-unit-id': u.id, 'data-lat': at[0], 'data-lng': at[1], 'data-status': u.status,
      });
      const title = M.svg('title', {});
      title.textContent = u.call_sign + ' · ' + u.status.replace('_', ' ') + ' · seen ' + M.age(seenAge(u)) + ' ago';
      marker.append(title, M.svg('circle', { r: 9 }));
      const label = M.svg('text', { x: 12, y: 4 });
      label.textContent = u.call_sign;
      marker.append(label);
      marker.addEventListener('click', () => pickUnit(u.id));
      g.append(marker);
    }
  }

  function drawRequests() {
    const g = $('map-requests');
    g.textContent = '';
    for (const r of requests.values()) {
      const xy = project(r.pickup.lat, r.pickup.lng);
      if (!xy) continue;
      const breach = isBreach(r);
      const marker = M.svg('g', {
        class: 'incident-marker cat-' + r.category + (breach ? ' breach' : '') + (selected === r.id ? ' selected' : ''),
        transform: 'translate(' + xy[0].toFixed(1) + ',' + xy[1].toFixed(1) + ')',
        'data-request-id': r.id,
      });
      const title = M.svg('title', {});
      title.textContent = 'Request ' + r.id + ' · C' + r.category + ' · ' + r.status;
      marker.append(title, M.svg('path', { d: 'M0,-13 L12,8 L-12,8 Z' }));
      const label = M.svg('text', { x: 0, y: 5, 'text-anchor': 'middle' });
      label.textContent = r.category;
      marker.append(label);
      marker.addEventListener('click', () => select(r.id));
      g.append(marker);
    }
  }

  // ------------------------------------------------------------------------------------ the lists

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

  function drawBoard() {
    const body = $('units');
    body.textContent = '';
    const sorted = [...units.values()].sort((a, b) => a.call_sign.localeCompare(b.call_sign));
    for (const u of sorted) {
      const job = u.job ? (u.job.kind === 'ambulance_request' ? '#' + u.job.id : u.job.kind + ' ' + u.job.id) : '';
      const canAssign = selected !== null && requests.has(selected) && u.status === 'available';
      const age = seenAge(u);
      body.append(M.el('tr', { 'data-unit-id': u.id, class: 'st-' + u.status }, [
        M.el('td', {}, [M.el('span', { class: 'dot st-' + u.status }), ' ', u.call_sign, M.el('small', { class: 'muted' }, ' ' + u.kind.toUpperCase())]),
        M.el('td', { class: 'unit-status' }, u.status.replace(/_/g, ' ')),
        M.el('td', { class: 'seen' + (age !== null && age > 120 ? ' stale' : '') }, age === null ? 'no fix' : M.age(age)),
        M.el('td', {}, job),
        M.el('td', {}, M.el('button', { type: 'button', class: 'assign', disabled: !canAssign, onclick: () => pickUnit(u.id), title: canAssign ? 'Assign to the selected request' : 'Select an open request first' }, 'Assign')),
      ]));
    }
  }

  function drawRequestList() {
    const list = $('requests');
    list.textContent = '';
    const open = [...requests.values()].sort((a, b) => a.category - b.category || a.id - b.id);
    $('request-count').textContent = '(' + open.length + ')';
    for (const r of open) {
      const target = r.clock ? r.clock.target.p90_s : null;
      const e = elapsed(r);
      const unit = r.unit ? r.unit.call_sign : '—';
      list.append(M.el('li', {
        class: 'request cat-' + r.category + (isBreach(r) ? ' breach' : '') + (selected === r.id ? ' selected' : ''),
        'data-request-id': r.id, onclick: () => select(r.id), tabindex: 0,
      }, [
        M.el('span', { class: 'badge cat-' + r.category }, 'C' + r.category),
        M.el('b', {}, ' #' + r.id + ' '),
        M.el('span', { class: 'req-status' }, r.status.replace(/_/g, ' ')),
        M.el('span', { class: 'arp' + (target && e > target ? ' over' : '') }, M.clock(e) + (target ? ' / ' + M.clock(target) : '')),
        M.el('div', { class: 'muted' }, (r.pickup_address || r.pickup.lat.toFixed(4) + ', ' + r.pickup.lng.toFixed(4)) + ' · unit ' + unit
          + (r.unit && r.unit.eta_s ? ' · ETA ' + M.age(r.unit.eta_s) : '')),
        isBreach(r) ? M.el('div', { class: 'breach-note' }, '⚠ ARP breach predicted') : null,
      ]));
    }
  }

  function drawAlerts() {
    const box = $('alerts');
    box.textContent = '';
    for (const [id, ev] of breaches) {
      if (!requests.has(id)) continue;
      box.append(M.el('div', { class: 'alert', 'data-request-id': id, onclick: () => select(id) },
        '⚠ Request #' + id + ' (C' + ev.category + ') will likely miss its ' + M.clock(ev.target_s) + ' target'
        + (ev.predicted_s ? ': predicted ' + M.clock(ev.predicted_s) : '') + (ev.reason ? ' — ' + ev.reason : '')));
    }
  }

  async function drawDetail() {
    const box = $('detail');
    if (selected === null) { box.hidden = true; return; }
    let r;
    try {
      r = await M.api('/api/v1/emergency/ambulance-requests/' + selected);
    } catch (e) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    $('detail-title').textContent = 'Request #' + r.id + ' · C' + r.category + ' · ' + r.status.replace(/_/g, ' ');
    const who = [r.patient_name, r.patient_age ? r.patient_age + ' y' : null, r.patient_condition].filter(Boolean).join(', ');
    $('detail-summary').textContent = (who || 'patient not named') + ' — ' + (r.pickup_address || 'no address')
      + (r.unit ? ' · unit ' + r.unit.call_sign + ' (' + r.unit.status.replace(/_/g, ' ') + ')' : ' · no unit');
    const tl = $('timeline');
    tl.textContent = '';
    for (const t of r.timeline || []) {
      const at = new Date(M.utcMs(t.at));
      tl.append(M.el('li', {}, [
        M.el('time', {}, at.toLocaleTimeString()), ' ',
        M.el('b', {}, t.event.replace(/_/g, ' ')), ' → ', t.to_status.replace(/_/g, ' '),
        t.actor_unit_id ? ' (unit ' + (units.get(t.actor_unit_id) || { call_sign: '#' + t.actor_unit_id }).call_sign + ')' : '',
        t.reason ? ' — ' + t.reason : '',
      ]));
    }
  }

  function redraw() {
    drawUnits();
    drawRequests();
    drawBoard();
    drawRequestList();
    drawAlerts();
  }

  // ----------------------------------------------------------------------------------- actions

  function select(id) {
    selected = selected === id ? null : id;
    $('assign-result').textContent = '';
    redraw();
    drawDetail();
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

  // ---------------------------------------------------------------------------------- state in

  function putUnit(u) {
    u.seenMs = u.position ? Date.now() - u.position.last_seen_age_s * 1000 : null;
    units.set(u.id, u);
  }

  function putRequest(r) {
    r.fetchedMs = Date.now();
    if (FINAL.has(r.status)) requests.delete(r.id); else requests.set(r.id, r);
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
    if (!mapCenter) {
      const pts = board.units.map((u) => unitPosition(u) || [u.home.lat, u.home.lng]);
      mapCenter = pts.length
        ? { lat: pts.reduce((s, p) => s + p[0], 0) / pts.length, lng: pts.reduce((s, p) => s + p[1], 0) / pts.length }
        : { lat: 12.9716, lng: 77.5946 };
      await drawBasemap(mapCenter);
    }
    redraw();
    drawDetail();
  }

  const refetching = new Map();
  function refetchRequest(id) {
    if (refetching.has(id)) return;
    refetching.set(id, setTimeout(async () => {
      refetching.delete(id);
      try {
        putRequest(await M.api('/api/v1/emergency/ambulance-requests/' + id));
      } catch (e) {
        if (e.status === 404) { requests.delete(id); redraw(); }
      }
      if (selected === id) drawDetail();
    }, 100));
  }

  function requestIdOf(ev) {
    if (typeof ev.request_id === 'number') return ev.request_id;
    for (const key of ['request', 'entity']) {
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
      drawUnits();
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
        drawUnits();
        drawBoard();
        return;
      }
      case 'unit_status': {
        const u = units.get(ev.unit_id);
        if (!u) {
          if (unitReads.has(ev.unit_id)) unitReads.get(ev.unit_id).push(ev);
          return;
        }
        u.status = ev.status;
        if (ev.status === 'available' || ev.status === 'off_duty') u.job = null;
        drawUnits();
        drawBoard();
        return;
      }
      case 'breach_predicted':
        breaches.set(ev.request_id, ev);
        refetchRequest(ev.request_id);
        drawAlerts();
        return;
      case 'unit_assigned': {
        const id = requestIdOf(ev);
        const u = units.get(ev.unit);
        if (u && id) u.job = { kind: 'ambulance_request', id };
        if (id) refetchRequest(id);
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

  // Clocks and last-seen ages move on their own between events (text only: the rows stay put).
  function tick() {
    for (const tr of $('units').querySelectorAll('tr[data-unit-id]')) {
      const u = units.get(Number(tr.dataset.unitId));
      const td = tr.querySelector('.seen');
      if (!u || !td) continue;
      const age = seenAge(u);
      td.textContent = age === null ? 'no fix' : M.age(age);
      td.classList.toggle('stale', age !== null && age > 120);
    }
    for (const li of $('requests').querySelectorAll('li[data-request-id]')) {
      const r = requests.get(Number(li.dataset.requestId));
      const span = li.querySelector('.arp');
      if (!r || !span) continue;
      const target = r.clock ? r.clock.target.p90_s : null;
      const e = elapsed(r);
      span.textContent = M.clock(e) + (target ? ' / ' + M.clock(target) : '');
      span.classList.toggle('over', Boolean(target && e > target));
    }
  }
  setInterval(tick, 1000);
})();
