// Tracking: one order (`/track/{id}`, its customer or staff), one ambulance request
// (`/track/ambulance/{id}`, its requester) or an order behind a share link (`/track/{token}`, no login,
// read-only: never the address or the delivery code). State is read over REST once per (re)connection,
// then follows the websocket topic `order:{id}` / `ambulance_request:{id}`; a share link's token opens a
// read-only session on its order's topic. The map is the console's (map.js): Leaflet on tiles, or on the
// H3 cell grid when no tile server is configured.
'use strict';
(function () {
  const M = window.OneMedi;
  const $ = (id) => document.getElementById(id);
  const FINAL = new Set(['delivered', 'cancelled', 'closed', 'no_unit_available']);

  const path = location.pathname;
  let m;
  let mode = null;
  let id = null;
  let token = null;
  if ((m = path.match(/^\/track\/ambulance\/(\d{1,18})$/))) { mode = 'ambulance'; id = Number(m[1]); }
  else if ((m = path.match(/^\/track\/(\d{1,18})$/))) { mode = 'order'; id = Number(m[1]); }
  else if ((m = path.match(/^\/track\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/))) { mode = 'shared'; token = m[1]; }

  // What the page shows, whatever the source.
  const view = {
    status: null,
    unit: null, // { id, call_sign, lat, lng, seenMs }
    eta: null, // { s, atMs }
    destination: null, // [lat, lng] (not for share links)
    timeline: [],
  };
  let map = null;
  let starting = null;
  let live = null;

  function label(status) {
    return String(status || '').replace(/_/g, ' ');
  }

  function gone(title, text) {
    $('tracking').hidden = true;
    $('gone').hidden = false;
    $('gone-title').textContent = title;
    $('gone-text').textContent = text;
    const pill = $('live');
    pill.textContent = 'not live';
    pill.className = 'pill off';
  }

  function failed(e) {
    $('error').textContent = e.message || String(e.code || e);
  }

  // ------------------------------------------------------------------------------------------- map

  function points() {
    return [view.unit && view.unit.lat !== undefined ? [view.unit.lat, view.unit.lng] : null, view.destination].filter(Boolean);
  }

  // Opens the map on the points that matter (rider, destination) once there is one, and fits them again
  // when one leaves the view.
  async function basemap() {
    const pts = points();
    if (!pts.length) return;
    if (!map) {
      if (!starting) {
        $('map').parentElement.hidden = false;
        starting = M.createMap($('map'), { layers: ['marks'], view: { bounds: pts, center: pts[0], zoom: 15, maxZoom: 15 } });
      }
      map = await starting;
    } else if (!pts.every((p) => map.contains(p[0], p[1]))) {
      map.setView({ bounds: pts, center: pts[0], zoom: 15, maxZoom: 15 });
    }
    drawMarks();
  }

  let destMark = null;
  let unitMark = null;
  function drawMarks() {
    if (!map) return;
    const g = map.layer('marks');
    if (view.destination) {
      const [lat, lng] = view.destination;
      if (!destMark) {
        destMark = map.mark({ class: 'dest-marker' }, M.svg('path', { d: 'M0,-12 L10,-3 L7,-3 L7,9 L-7,9 L-7,-3 L-10,-3 Z' }), null,
          mode === 'ambulance' ? 'Pickup' : 'Delivery address', lat, lng, null);
        g.prepend(destMark);
      } else {
        map.place(destMark, lat, lng);
      }
    }
    const u = view.unit;
    if (u && u.lat !== undefined) {
      if (!unitMark) {
        unitMark = map.mark({ id: 'unit-marker' }, M.svg('circle', { r: 9 }), u.call_sign, u.call_sign, u.lat, u.lng, null);
        g.append(unitMark);
      } else {
        map.place(unitMark, u.lat, u.lng);
        unitMark.querySelector('title').textContent = u.call_sign;
        unitMark.querySelector('text.label').textContent = u.call_sign;
      }
      unitMark.setAttribute('class', 'mark unit-marker st-' + (u.status || 'assigned'));
    } else if (unitMark) {
      unitMark.remove();
      unitMark = null;
    }
    map.declutter();
  }

  // ---------------------------------------------------------------------------------------- facts

  function seenAge() {
    return view.unit && view.unit.seenMs ? (Date.now() - view.unit.seenMs) / 1000 : null;
  }

  function etaLeft() {
    if (!view.eta || FINAL.has(view.status)) return null;
    return Math.max(0, view.eta.s - (Date.now() - view.eta.atMs) / 1000);
  }

  function drawFacts() {
    const status = $('status');
    status.textContent = label(view.status);
    status.dataset.status = view.status || '';
    const u = view.unit;
    $('unit').textContent = u ? u.call_sign + (u.status && mode === 'ambulance' ? ' · ' + label(u.status) : '') : (FINAL.has(view.status) ? '—' : 'not assigned yet');
    tick();
    const tl = $('timeline');
    tl.textContent = '';
    for (const t of view.timeline) {
      const at = new Date(M.utcMs(t.at));
      tl.append(M.el('li', {}, [M.el('time', {}, at.toLocaleTimeString()), ' ', M.el('b', {}, label(t.event)), ' → ', label(t.status)]));
    }
  }

  // Ages and the ETA move between events (text only).
  function tick() {
    const age = seenAge();
    const seen = $('seen');
    seen.textContent = age === null ? '—' : M.age(age) + ' ago';
    seen.classList.toggle('stale', age !== null && age > 120);
    const left = etaLeft();
    $('eta').textContent = view.status === 'delivered' ? 'delivered' : left === null ? '—' : left < 30 ? 'arriving' : M.age(left);
  }
  setInterval(tick, 1000);

  function setUnitPosition(position) {
    if (!position) return;
    view.unit.lat = position.lat;
    view.unit.lng = position.lng;
    view.unit.seenMs = Date.now() - position.last_seen_age_s * 1000;
  }

  // An order's (or share link's) TrackingView.
  function fromTracking(t) {
    view.orderId = t.order_id;
    view.status = t.status;
    view.unit = t.rider ? { id: t.rider.unit_id, call_sign: t.rider.call_sign } : null;
    if (t.rider) setUnitPosition(t.rider.position);
    view.eta = t.eta_s === null || t.eta_s === undefined ? null : { s: t.eta_s, atMs: Date.now() };
    view.timeline = t.timeline || [];
    $('heading').textContent = 'Order ' + t.order_number;
  }

  async function show() {
    $('gone').hidden = true;
    $('tracking').hidden = false;
    drawFacts();
    // Nothing to place yet (a share link before a rider has a position): no empty map.
    await basemap().catch(failed);
    drawMarks();
  }

  // ----------------------------------------------------------------------------------- by source

  async function loadOrder() {
    let o;
    try {
      o = await M.api('/api/v1/orders/' + id);
    } catch (e) {
      if (e.status === 404) gone('Order not found', 'There is no order ' + id + ' that you may follow.');
      else failed(e);
      return;
    }
    fromTracking(o.tracking);
    view.destination = [o.shipping.lat, o.shipping.lng];
    const dest = $('destination');
    dest.hidden = false;
    dest.textContent = 'To ' + o.shipping.name + ', ' + o.shipping.address + ', ' + o.shipping.city;
    const code = o.delivery_code;
    $('code-box').hidden = !code;
    $('delivery-code').textContent = code || '';
    $('error').textContent = '';
    await show();
  }

  async function loadShared() {
    const res = await fetch('/api/v1/track/' + token, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    const body = await res.json().catch(() => null);
    if (!res.ok) {
      const code = body && body.error ? body.error.code : '';
      if (code === 'share_link_expired') gone('This tracking link has expired', 'Ask the person who shared it for a new link.');
      else if (res.status === 401) gone('This tracking link is not valid', 'Check that the whole link was copied, or ask for a new one.');
      else if (res.status === 404) gone('Order not found', 'The order behind this link no longer exists.');
      else failed({ message: 'Could not load the tracking (' + res.status + ').' });
      return false;
    }
    fromTracking(body);
    $('error').textContent = '';
    await show();
    return true;
  }

  async function loadAmbulance() {
    let r;
    try {
      r = await M.api('/api/v1/emergency/ambulance-requests/' + id);
    } catch (e) {
      if (e.status === 404) gone('Request not found', 'There is no ambulance request ' + id + ' that you may follow.');
      else failed(e);
      return;
    }
    view.status = r.status;
    view.unit = r.unit ? { id: r.unit.id, call_sign: r.unit.call_sign, status: r.unit.status } : null;
    if (r.unit) setUnitPosition(r.unit.position);
    view.eta = r.unit && r.unit.eta_s !== null && r.unit.eta_s !== undefined ? { s: r.unit.eta_s, atMs: Date.now() } : null;
    view.timeline = (r.timeline || []).map((t) => ({ event: t.event, status: t.to_status, at: t.at }));
    view.destination = [r.pickup.lat, r.pickup.lng];
    $('heading').textContent = 'Ambulance request #' + r.id;
    const dest = $('destination');
    dest.hidden = !r.pickup_address;
    dest.textContent = 'Pickup: ' + (r.pickup_address || '');
    $('error').textContent = '';
    await show();
  }

  // Re-reads after a burst of events settles (status changes come with their machine's state_changed).
  let pending = null;
  function reloadSoon(load) {
    if (pending) return;
    pending = setTimeout(() => { pending = null; load().catch(failed); }, 150);
  }

  function onOrderEvent(load) {
    return (ev) => {
      if (ev.type === 'rider_location' && view.unit && view.unit.id === ev.unit_id) {
        view.unit.lat = ev.lat;
        view.unit.lng = ev.lng;
        view.unit.seenMs = Date.now();
        view.eta = { s: ev.eta_s, atMs: Date.now() };
        tick();
        drawMarks();
        basemap().catch(failed);
        return;
      }
      if (ev.type === 'rider_location' || ev.type === 'rider_assigned' || ev.type === 'order_status_changed') reloadSoon(load);
    };
  }

  // ------------------------------------------------------------------------------------------ start

  if (mode === null) {
    gone('This is not a tracking link', 'Check that the whole link was copied.');
    return;
  }

  if (mode === 'shared') {
    $('track-title').textContent = 'Shared tracking';
    $('unit-label').textContent = 'Rider';
    $('map').setAttribute('aria-label', 'Map of the rider');
    loadShared().then((ok) => {
      if (!ok) return;
      live = new M.Live({
        token,
        onOpen: () => loadShared().catch(failed),
        onEvent: onOrderEvent(loadShared),
        onError: failed,
        // Refused or closed at expiry: the REST answer says which; a live link reconnects.
        onUnauthorized: async () => {
          const still = await loadShared().catch(() => false);
          if (still) setTimeout(() => live.open(), 2000);
        },
      });
      live.follow('order:' + view.orderId);
    }, failed);
    return;
  }

  const me = M.requireLogin(null);
  if (!me) return;
  $('logout').hidden = false;

  if (mode === 'order') {
    $('track-title').textContent = 'Order tracking';
    if (me.user.role === 'customer') setupShare();
    live = new M.Live({ onOpen: () => loadOrder().catch(failed), onEvent: onOrderEvent(loadOrder), onError: failed });
    live.follow('order:' + id);
  } else {
    $('track-title').textContent = 'Ambulance tracking';
    $('unit-label').textContent = 'Ambulance';
    live = new M.Live({
      onOpen: () => loadAmbulance().catch(failed),
      onEvent: (ev) => {
        // The assigned crew's pings come on the request's topic too.
        if (ev.type === 'unit_location' && view.unit && view.unit.id === ev.unit_id) {
          view.unit.lat = ev.lat;
          view.unit.lng = ev.lng;
          view.unit.seenMs = Date.now();
          drawMarks();
          basemap().catch(failed);
          return;
        }
        reloadSoon(loadAmbulance);
      },
      onError: failed,
    });
    live.follow('ambulance_request:' + id);
  }

  function setupShare() {
    $('share-box').hidden = false;
    $('share').addEventListener('click', async () => {
      const hours = Number($('share-hours').value);
      try {
        const link = await M.api('/api/v1/orders/' + id + '/share', { method: 'POST', body: { hours } });
        const url = location.origin + link.url;
        $('share-result').hidden = false;
        const input = $('share-url');
        input.value = url;
        input.focus();
        input.select();
        $('share-expires').textContent = 'Works until ' + new Date(link.expires_at).toLocaleString();
      } catch (e) {
        failed(e);
      }
    });
    $('share-copy').addEventListener('click', async () => {
      const input = $('share-url');
      input.select();
      try {
        await navigator.clipboard.writeText(input.value);
        $('share-expires').textContent = 'Copied. ' + $('share-expires').textContent.replace(/^Copied\. /, '');
      } catch (_) {
        // Clipboard access refused: the link stays selected for a manual copy.
      }
    });
  }
})();
