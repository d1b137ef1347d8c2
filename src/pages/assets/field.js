// The field view for crews, riders and phlebotomists (phone-sized): availability and location over the
// websocket, offers with a countdown, accept/decline, and the job's steps over REST.
'use strict';
(function () {
  const M = window.OneMedi;
  const me = M.requireLogin(['paramedic', 'rider', 'phlebotomist']);
  if (!me) return;

  const $ = (id) => document.getElementById(id);
  // Job status → the next step the crew reports (PUT /emergency/units/{id}/status).
  const NEXT = {
    assigned: ['en_route', 'Set off (en route)'],
    en_route: ['on_scene', 'Arrived on scene'],
    on_scene: ['transporting', 'Transporting to hospital'],
    transporting: ['at_destination', 'Arrived at hospital'],
    at_destination: ['handed_over', 'Patient handed over'],
    handed_over: ['back_in_service', 'Back in service'],
  };
  const LOCATION_MIN_INTERVAL_MS = 2000;

  let unit = null;
  let offer = null; // the offer_made event on screen
  let offerTimer = null;
  let job = null; // the request being worked
  let watchId = null;
  let lastSent = 0;
  let pendingFix = null;
  let fixTimer = null;

  function message(text, isError) {
    const m = $('field-message');
    m.textContent = text;
    m.className = isError ? 'error' : 'muted';
  }

  function showUnit() {
    $('unit-name').textContent = unit.call_sign + ' · ' + unit.kind.replace(/_/g, ' ').toUpperCase();
    $('unit-status').textContent = unit.status.replace(/_/g, ' ');
    $('unit-status').dataset.status = unit.status;
    const onJob = !['available', 'busy', 'off_duty'].includes(unit.status);
    $('on-duty').disabled = onJob || unit.status === 'available';
    $('off-duty').disabled = onJob || unit.status === 'off_duty';
  }

  async function setAvailability(status) {
    try {
      await live.command({ type: 'status', status });
      unit.status = status;
      showUnit();
      message(status === 'available' ? 'You are on duty.' : 'You are off duty.');
    } catch (e) {
      message(e.message || 'not changed', true);
    }
  }

  // ------------------------------------------------------------------------------------ location

  function shareLocation() {
    if (!('geolocation' in navigator)) {
      $('geo-state').textContent = 'this browser cannot share location';
      return;
    }
    if (watchId !== null) {
      navigator.geolocation.clearWatch(watchId);
      watchId = null;
      $('geo-state').textContent = 'not shared';
      $('share-location').textContent = 'Share my location';
      return;
    }
    $('geo-state').textContent = 'waiting for a fix…';
    $('share-location').textContent = 'Stop sharing';
    watchId = navigator.geolocation.watchPosition((pos) => {
      // At most one ping per interval; a fix arriving sooner is held and sent when the interval ends,
      // so the last position is never lost.
      pendingFix = pos;
      const wait = lastSent + LOCATION_MIN_INTERVAL_MS - Date.now();
      if (wait <= 0) sendFix();
      else if (!fixTimer) fixTimer = setTimeout(sendFix, wait);
    }, (err) => {
      $('geo-state').textContent = 'location unavailable: ' + err.message;
    }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 20000 });
  }

  function sendFix() {
    fixTimer = null;
    const pos = pendingFix;
    pendingFix = null;
    if (!pos || watchId === null) return;
    lastSent = Date.now();
    const c = pos.coords;
    const frame = { type: 'location', lat: c.latitude, lng: c.longitude, ts: Math.round(pos.timestamp) };
    if (c.heading !== null && !isNaN(c.heading)) frame.heading = c.heading;
    if (c.speed !== null && !isNaN(c.speed)) frame.speed = Math.min(c.speed, 85);
    if (c.accuracy !== null && !isNaN(c.accuracy)) frame.accuracy = c.accuracy;
    live.command(frame).then(
      () => { $('geo-state').textContent = c.latitude.toFixed(5) + ', ' + c.longitude.toFixed(5) + ' (±' + Math.round(c.accuracy || 0) + ' m) sent ' + new Date().toLocaleTimeString(); },
      (e) => { $('geo-state').textContent = 'not sent: ' + (e.message || e.code); },
    );
  }

  // -------------------------------------------------------------------------------------- offers

  function showOffer(ev) {
    offer = ev;
    $('offer').hidden = false;
    $('offer-text').textContent = 'Request #' + ev.request.id + ' · ' + (ev.distance_m / 1000).toFixed(1) + ' km away · ETA '
      + M.age(ev.eta_s);
    clearInterval(offerTimer);
    const tick = () => {
      const left = (M.utcMs(ev.expires_at) - Date.now()) / 1000;
      $('offer-countdown').textContent = Math.max(0, Math.ceil(left));
      if (left <= 0) hideOffer('The offer lapsed.');
    };
    tick();
    offerTimer = setInterval(tick, 250);
    if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
  }

  function hideOffer(text) {
    clearInterval(offerTimer);
    offer = null;
    $('offer').hidden = true;
    if (text) message(text);
  }

  async function answer(accept) {
    if (!offer) return;
    const id = offer.request.id;
    $('offer-accept').disabled = $('offer-decline').disabled = true;
    try {
      await live.command({ type: accept ? 'accept' : 'decline', request_id: id });
      hideOffer(accept ? 'Accepted request #' + id + '.' : 'Declined request #' + id + '.');
      if (accept) await loadJob(id);
    } catch (e) {
      hideOffer('Not ' + (accept ? 'accepted' : 'declined') + ': ' + (e.message || e.code));
    } finally {
      $('offer-accept').disabled = $('offer-decline').disabled = false;
    }
  }

  // ------------------------------------------------------------------------------------------ job

  async function loadJob(id) {
    try {
      job = await M.api('/api/v1/emergency/ambulance-requests/' + id);
    } catch (e) {
      job = null;
    }
    showJob();
    await refreshUnit();
  }

  function showJob() {
    const box = $('job');
    if (!job || ['closed', 'cancelled'].includes(job.status)) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    $('job-text').textContent = '#' + job.id + ' · C' + job.category + ' · ' + job.status.replace(/_/g, ' ') + ' · '
      + (job.pickup_address || job.pickup.lat.toFixed(5) + ', ' + job.pickup.lng.toFixed(5))
      + (job.patient_condition ? ' · ' + job.patient_condition : '');
    $('job-text').dataset.status = job.status;
    const steps = $('job-steps');
    steps.textContent = '';
    const next = NEXT[job.status];
    const pick = $('hospital-pick');
    pick.hidden = true;
    if (next && next[0] === 'transporting') {
      const select = $('hospital');
      select.textContent = '';
      for (const h of job.recommended_destinations || []) {
        select.append(M.el('option', { value: h.hospital_id }, h.name + ' · ' + (h.distance_m / 1000).toFixed(1) + ' km · ' + h.emergency_beds_available + ' ER beds'));
      }
      pick.hidden = false;
    }
    if (next) {
      steps.append(M.el('button', { type: 'button', class: 'primary big', 'data-step': next[0], onclick: () => step(next[0]) }, next[1]));
    }
  }

  async function step(status) {
    const body = { status };
    if (status === 'transporting') {
      const h = Number($('hospital').value);
      if (!h) { message('Pick a destination hospital first.', true); return; }
      body.hospital_id = h;
    }
    try {
      unit = await M.api('/api/v1/emergency/units/' + unit.id + '/status', { method: 'PUT', body });
      showUnit();
      if (status === 'back_in_service') { job = null; showJob(); message('Back in service.'); return; }
      await loadJob(job.id);
    } catch (e) {
      message(e.message, true);
    }
  }

  async function refreshUnit() {
    unit = await M.api('/api/v1/emergency/my-unit');
    showUnit();
  }

  // ----------------------------------------------------------------------- today's collections
  // Hook for the lab-collection route: when the collections section names an endpoint in
  // `data-collections-url` (a JSON list, or `{items: [...]}`), its entries are listed in the order
  // given. Nothing is shown while no such endpoint is configured.
  async function loadTodaysCollections() {
    const section = $('collections');
    const url = section.dataset.collectionsUrl;
    if (!url || me.user.role !== 'phlebotomist') return;
    try {
      const data = await M.api(url);
      renderTodaysCollections(Array.isArray(data) ? data : (data && data.items) || []);
    } catch (e) {
      message('Collections not loaded: ' + e.message, true);
    }
  }

  function renderTodaysCollections(items) {
    const list = $('collections-list');
    list.textContent = '';
    for (const it of items) {
      const when = it.window_start ? new Date(M.utcMs(it.window_start)).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
      list.append(M.el('li', { 'data-id': it.id }, [
        M.el('b', {}, [when, ' ', it.title || it.name || '#' + it.id]),
        it.address ? M.el('div', { class: 'muted' }, it.address) : null,
        it.status ? M.el('div', {}, String(it.status).replace(/_/g, ' ')) : null,
      ]));
    }
    $('collections').hidden = false;
  }
  window.OneMediField = { loadTodaysCollections, renderTodaysCollections };

  // ------------------------------------------------------------------------------------- events

  function requestIdOf(ev) {
    if (ev.request && typeof ev.request === 'object') return ev.request.id;
    if (ev.entity && typeof ev.entity === 'object') return ev.entity.id;
    return ev.request_id || null;
  }

  function onEvent(ev, topic, frameType) {
    if (frameType === 'offer' || ev.type === 'offer_made') {
      if (ev.request && ev.request.kind === 'ambulance_request') showOffer(ev);
      return;
    }
    const id = requestIdOf(ev);
    if (offer && id === offer.request.id && ['offer_expired', 'claim_lost', 'offer_declined'].includes(ev.type)) {
      hideOffer(ev.type === 'offer_expired' ? 'The offer lapsed.' : 'The job went elsewhere.');
    }
    if (ev.type === 'unit_status' && unit && ev.unit_id === unit.id) {
      unit.status = ev.status;
      showUnit();
    }
    if (ev.type === 'unit_assigned' && unit && ev.unit === unit.id && id && (!job || job.id !== id)) loadJob(id);
    if (ev.type === 'state_changed' && job && id === job.id) loadJob(id);
  }

  const live = new M.Live({
    onOpen: async () => {
      try {
        await refreshUnit();
        await live.follow('unit:' + unit.id);
        if (unit.job && unit.job.kind === 'ambulance_request') await loadJob(unit.job.id);
      } catch (e) {
        message(e.status === 404 ? 'You are not on any unit’s crew; ask a dispatcher to add you.' : e.message, true);
      }
    },
    onEvent,
    onError: (e) => message(e.message || e.code, true),
  });

  $('on-duty').addEventListener('click', () => setAvailability('available'));
  $('off-duty').addEventListener('click', () => setAvailability('off_duty'));
  $('share-location').addEventListener('click', shareLocation);
  $('offer-accept').addEventListener('click', () => answer(true));
  $('offer-decline').addEventListener('click', () => answer(false));
  loadTodaysCollections();
})();
