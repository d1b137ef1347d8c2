// The field view for crews, riders and phlebotomists (phone-sized): availability and location over the
// websocket, offers with a countdown, accept/decline, and the job's steps over REST. An ambulance crew
// works an ambulance request, a rider an order's delivery (hand-over with the customer's code), a
// phlebotomist home collections plus the day's planned route. An ambulance offer shows the call's
// category, complaint, address and distance (the call is read over REST: a crew may read a call offered
// to it); while transporting, the map link goes to the destination hospital. After a reload the open
// offer and the current job come back from GET /api/v1/emergency/my-unit.
'use strict';
(function () {
  const M = window.OneMedi;
  const me = M.requireLogin(['paramedic', 'rider', 'phlebotomist']);
  if (!me) return;

  const $ = (id) => document.getElementById(id);
  // Ambulance request status → the next step the crew reports (PUT /emergency/units/{id}/status).
  const AMBULANCE_NEXT = {
    assigned: ['en_route', 'Set off (en route)'],
    en_route: ['on_scene', 'Arrived on scene'],
    on_scene: ['transporting', 'Transporting to hospital'],
    transporting: ['at_destination', 'Arrived at hospital'],
    at_destination: ['handed_over', 'Patient handed over'],
    handed_over: ['back_in_service', 'Back in service'],
  };
  // Order status → the rider's next step (PUT /orders/{id}/status); out for delivery ends with the code.
  const ORDER_NEXT = {
    packed: ['shipped', 'Picked up at the pharmacy'],
    shipped: ['out_for_delivery', 'Out for delivery'],
  };
  // Collection status → the phlebotomist's next step (PUT /lab-collections/{id}/status).
  const COLLECTION_NEXT = {
    assigned: ['en_route', 'Set off (en route)'],
    en_route: ['collected', 'Samples collected'],
    collected: ['at_lab', 'Samples handed in at the lab'],
  };
  // The server's error codes in words.
  const ERRORS = {
    delivery_code_invalid: 'Wrong code — ask the customer to read it again.',
    delivery_code_locked: 'Too many wrong codes: the order is locked. Call support.',
    validation_failed: 'That is not valid',
    invalid_transition: 'Not possible now',
    offer_expired: 'The offer lapsed',
    offer_taken: 'The job was already answered or went to someone else',
    unit_unavailable: 'Your unit is not available for it',
    not_found: 'Not found (it is no longer yours)',
    forbidden: 'Not allowed',
    conflict: 'It changed meanwhile; try again',
    disconnected: 'Not connected; try again in a moment',
  };
  const KIND_WORD = { ambulance_request: 'Request', order: 'Order', lab_collection: 'Collection' };
  const CATEGORY_WORD = { 1: 'C1 · life-threatening', 2: 'C2 · emergency', 3: 'C3 · urgent', 4: 'C4 · less urgent' };
  // Statuses in which the crew drives to the hospital rather than to the patient.
  const TO_HOSPITAL = new Set(['transporting']);
  const LOCATION_MIN_INTERVAL_MS = 2000;
  // Remembers for this tab that the crew shares its location, so a reload carries on sharing.
  const SHARING_KEY = 'onemedi.field.sharing';
  // India Standard Time: the lab's day and every time shown.
  const IST_OFFSET_MS = 330 * 60 * 1000;

  let unit = null; // GET /emergency/my-unit
  let offer = null; // the offer on screen: {request: {kind, id}, distance_m, eta_s, deadline, order_number}
  let offerTimer = null;
  let job = null; // {kind, id, data}: the job being worked and its REST view
  let jobTopic = null;
  let watchId = null;
  let lastSent = 0;
  let pendingFix = null;
  let fixTimer = null;
  let routeQueued = false;
  const collectionCache = new Map();

  function message(text, isError) {
    const m = $('field-message');
    m.textContent = text;
    m.className = isError ? 'error' : 'muted';
  }

  function words(e) {
    if (!e) return 'failed';
    const plain = ERRORS[e.code];
    let text = plain || e.message || e.code || 'failed';
    if (plain && e.message && !['delivery_code_invalid', 'delivery_code_locked'].includes(e.code)) text += ': ' + e.message;
    if (e.code === 'delivery_code_invalid' && e.details && e.details.attempts_left !== undefined) {
      text += ' ' + e.details.attempts_left + ' ' + (e.details.attempts_left === 1 ? 'try' : 'tries') + ' left.';
    }
    return text;
  }

  function km(m) {
    return (m / 1000).toFixed(1) + ' km';
  }

  function distanceM(a, b) {
    const rad = Math.PI / 180;
    const dLat = (b[0] - a[0]) * rad, dLng = (b[1] - a[1]) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * rad) * Math.cos(b[0] * rad) * Math.sin(dLng / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function istTime(text) {
    const ms = M.utcMs(text);
    if (ms === null) return '—';
    const d = new Date(ms + IST_OFFSET_MS);
    return String(d.getUTCHours()).padStart(2, '0') + ':' + String(d.getUTCMinutes()).padStart(2, '0');
  }

  // HH:MM India time, with the date when it is not on `day`.
  function istWhen(text, day) {
    const ms = M.utcMs(text);
    if (ms === null) return '—';
    const date = new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 10);
    return istTime(text) + (date === day ? '' : ' on ' + date);
  }

  function indiaToday() {
    return new Date(Date.now() + IST_OFFSET_MS).toISOString().slice(0, 10);
  }

  // The day whose route is listed: today (India time), or `?date=YYYY-MM-DD` to look at another day.
  function routeDate() {
    const asked = new URLSearchParams(location.search).get('date');
    return asked && /^\d{4}-\d{2}-\d{2}$/.test(asked) ? asked : indiaToday();
  }

  function rupees(paise) {
    return '₹' + (paise / 100).toFixed(2);
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
      message(words(e), true);
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
      sessionStorage.removeItem(SHARING_KEY);
      $('geo-state').textContent = 'not shared';
      $('share-location').textContent = 'Share my location';
      return;
    }
    sessionStorage.setItem(SHARING_KEY, '1');
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
    if (!live.ready) {
      // Sent once the websocket is (re)connected: see onOpen.
      pendingFix = pos;
      $('geo-state').textContent = 'waiting for the connection…';
      return;
    }
    lastSent = Date.now();
    const c = pos.coords;
    const frame = { type: 'location', lat: c.latitude, lng: c.longitude, ts: Math.round(pos.timestamp) };
    if (c.heading !== null && !isNaN(c.heading)) frame.heading = c.heading;
    if (c.speed !== null && !isNaN(c.speed)) frame.speed = Math.min(c.speed, 85);
    if (c.accuracy !== null && !isNaN(c.accuracy)) frame.accuracy = c.accuracy;
    live.command(frame).then(
      () => { $('geo-state').textContent = c.latitude.toFixed(5) + ', ' + c.longitude.toFixed(5) + ' (±' + Math.round(c.accuracy || 0) + ' m) sent ' + new Date().toLocaleTimeString(); },
      (e) => { $('geo-state').textContent = 'not sent: ' + words(e); },
    );
  }

  // -------------------------------------------------------------------------------------- offers

  // The job kind this unit is offered: the websocket settles answers by the unit's kind.
  function offeredKind() {
    if (!unit) return null;
    if (unit.kind === 'rider') return 'order';
    if (unit.kind === 'phlebotomist') return 'lab_collection';
    return 'ambulance_request';
  }

  function sameJob(a, b) {
    return !!a && !!b && a.kind === b.kind && a.id === b.id;
  }

  // `ev` is an offer_made event or GET my-unit's open_offer; `deadline` the local epoch ms it lapses.
  function showOffer(ev, deadline) {
    const fresh = !offer || !sameJob(offer.request, ev.request);
    offer = {
      request: ev.request,
      distance_m: ev.distance_m,
      eta_s: ev.eta_s,
      deadline,
      order_number: ev.order_number || (offer && !fresh ? offer.order_number : null),
      call: offer && !fresh ? offer.call : null,
    };
    renderOffer();
    if (fresh && ev.request.kind === 'ambulance_request') loadOfferedCall(ev.request.id);
    $('offer').hidden = false;
    $('offer').dataset.kind = ev.request.kind;
    $('offer').dataset.id = ev.request.id;
    clearInterval(offerTimer);
    const tick = () => {
      const left = (offer.deadline - Date.now()) / 1000;
      $('offer-countdown').textContent = Math.max(0, Math.ceil(left));
      if (left <= 0) hideOffer('The offer lapsed.');
    };
    tick();
    offerTimer = setInterval(tick, 250);
    // Browsers refuse to vibrate a page nobody has touched yet (e.g. right after a reload).
    const touched = !navigator.userActivation || navigator.userActivation.hasBeenActive;
    if (fresh && touched && navigator.vibrate) navigator.vibrate([200, 100, 200]);
  }

  // The offered call's category, complaint and address, to decide on.
  async function loadOfferedCall(id) {
    try {
      const call = await M.api('/api/v1/emergency/ambulance-requests/' + id);
      if (offer && offer.request.kind === 'ambulance_request' && offer.request.id === id) {
        offer.call = call;
        renderOffer();
      }
    } catch (e) {
      if (offer && offer.request.id === id) message('Call details not loaded: ' + words(e), true);
    }
  }

  // The offer's distance: the event's, or else from the unit's last position to the patient.
  function offerDistance() {
    if (offer.distance_m !== null && offer.distance_m !== undefined) return offer.distance_m;
    const c = offer.call;
    if (c && unit && unit.position) return distanceM([unit.position.lat, unit.position.lng], [c.pickup.lat, c.pickup.lng]);
    return null;
  }

  function renderOffer() {
    const r = offer.request;
    const parts = [(KIND_WORD[r.kind] || 'Job') + ' #' + r.id + (offer.order_number ? ' (' + offer.order_number + ')' : '')];
    const details = $('offer-details');
    details.hidden = r.kind !== 'ambulance_request';
    if (r.kind === 'ambulance_request') {
      const c = offer.call;
      const distance = offerDistance();
      $('offer-category').textContent = c ? CATEGORY_WORD[c.category] || 'C' + c.category : '…';
      $('offer-complaint').textContent = c ? c.patient_condition || 'not given' : '…';
      $('offer-address').textContent = c ? c.pickup_address || c.pickup.lat.toFixed(5) + ', ' + c.pickup.lng.toFixed(5) : '…';
      $('offer-distance').textContent = distance === null ? '—' : km(distance);
      details.dataset.loaded = c ? String(c.id) : '';
      if (c) parts.push('C' + c.category);
    }
    if (offer.distance_m !== null && offer.distance_m !== undefined) {
      const to = r.kind === 'order' ? ' to the customer' : r.kind === 'lab_collection' ? ' to the patient' : ' away';
      parts.push(km(offer.distance_m) + to);
    }
    if (offer.eta_s !== null && offer.eta_s !== undefined) parts.push('ETA ' + M.age(offer.eta_s));
    $('offer-title').textContent = r.kind === 'order' ? 'Delivery offer' : r.kind === 'lab_collection' ? 'Collection offer' : 'New job offer';
    $('offer-text').textContent = parts.join(' · ');
  }

  function hideOffer(text) {
    clearInterval(offerTimer);
    offer = null;
    $('offer').hidden = true;
    if (text) message(text);
  }

  async function answer(accept) {
    if (!offer) return;
    const request = offer.request;
    const label = (KIND_WORD[request.kind] || 'job').toLowerCase() + ' #' + request.id;
    $('offer-accept').disabled = $('offer-decline').disabled = true;
    let answered = false;
    try {
      await live.command({ type: accept ? 'accept' : 'decline', request_id: request.id, kind: request.kind });
      answered = true;
      hideOffer(accept ? 'Accepted ' + label + '.' : 'Declined ' + label + '.');
    } catch (e) {
      hideOffer('Not ' + (accept ? 'accepted' : 'declined') + ': ' + words(e));
    } finally {
      $('offer-accept').disabled = $('offer-decline').disabled = false;
    }
    if (answered && accept) await refreshUnit().catch((e) => message(words(e), true));
  }

  // ------------------------------------------------------------------------------------------ job

  const JOB_URL = {
    ambulance_request: (id) => '/api/v1/emergency/ambulance-requests/' + id,
    order: (id) => '/api/v1/orders/' + id,
    lab_collection: (id) => '/api/v1/lab-collections/' + id,
  };
  // The job's own topic; a collection's changes already come on the collector's topic.
  const JOB_TOPIC = {
    ambulance_request: (id) => 'ambulance_request:' + id,
    order: (id) => 'order:' + id,
  };

  // Follows only the current job's own topic (the unit's and collector's topics stay).
  async function followJob(ref) {
    const topic = ref && JOB_TOPIC[ref.kind] ? JOB_TOPIC[ref.kind](ref.id) : null;
    if (topic === jobTopic) return;
    if (jobTopic) {
      live.topics.delete(jobTopic);
      live.command({ type: 'unsubscribe', topic: jobTopic }).catch(() => {});
    }
    jobTopic = topic;
    if (topic) await live.follow(topic).catch((e) => message(words(e), true));
  }

  async function loadJob(ref) {
    if (!ref || !JOB_URL[ref.kind]) {
      job = null;
      showJob();
      await followJob(null);
      return;
    }
    try {
      job = { kind: ref.kind, id: ref.id, data: await M.api(JOB_URL[ref.kind](ref.id)) };
    } catch (e) {
      job = null;
    }
    showJob();
    await followJob(job);
  }

  function mapLink(lat, lng, label) {
    return M.el('a', { href: 'geo:' + lat + ',' + lng + '?q=' + lat + ',' + lng + '(' + encodeURIComponent(label) + ')', class: 'map-link', id: 'job-map' },
      'Open in maps (' + lat.toFixed(5) + ', ' + lng.toFixed(5) + ')');
  }

  function showJob() {
    const box = $('job');
    const done = !job || ['closed', 'cancelled', 'delivered', 'at_lab', 'report_ready'].includes(job.data.status);
    $('job-error').hidden = true;
    if (done) {
      box.hidden = true;
      box.removeAttribute('data-kind');
      return;
    }
    box.hidden = false;
    box.dataset.kind = job.kind;
    $('job-text').dataset.status = job.data.status;
    $('job-text').dataset.id = job.id;
    $('job-steps').textContent = '';
    $('job-details').textContent = '';
    $('hospital-pick').hidden = true;
    $('deliver-form').hidden = true;
    if (job.kind === 'order') showOrder(job.data);
    else if (job.kind === 'lab_collection') showCollection(job.data);
    else showAmbulance(job.data);
  }

  function stepButton(status, label, action) {
    $('job-steps').append(M.el('button', { type: 'button', class: 'primary big', 'data-step': status, onclick: action }, label));
  }

  // The destination hospitals read so far, by id (for the navigation link while transporting).
  const hospitals = new Map();

  function showAmbulance(r) {
    $('job-title').textContent = 'Current job';
    $('job-text').textContent = '#' + r.id + ' · C' + r.category + ' · ' + r.status.replace(/_/g, ' ') + ' · '
      + (r.pickup_address || r.pickup.lat.toFixed(5) + ', ' + r.pickup.lng.toFixed(5))
      + (r.patient_condition ? ' · ' + r.patient_condition : '');
    const toHospital = TO_HOSPITAL.has(r.status) && r.destination_hospital_id;
    const h = toHospital ? hospitals.get(r.destination_hospital_id) : null;
    if (h) {
      $('job-details').append(M.el('div', { id: 'job-destination' }, [M.el('b', {}, 'To ' + h.name), ' · ', h.address]), mapLink(h.lat, h.lng, h.name));
      $('job-map').dataset.target = 'hospital';
    } else {
      $('job-details').append(mapLink(r.pickup.lat, r.pickup.lng, r.pickup_address || 'Pickup'));
      $('job-map').dataset.target = 'incident';
      if (toHospital) {
        M.api('/api/v1/hospitals/' + r.destination_hospital_id).then((got) => {
          hospitals.set(got.id, got);
          if (job && job.kind === 'ambulance_request' && job.id === r.id) showJob();
        }, (e) => message('Destination not loaded: ' + words(e), true));
      }
    }
    const next = AMBULANCE_NEXT[r.status];
    if (next && next[0] === 'transporting') {
      const select = $('hospital');
      select.textContent = '';
      for (const h of r.recommended_destinations || []) {
        select.append(M.el('option', { value: h.hospital_id }, h.name + ' · ' + km(h.distance_m) + ' · ' + h.emergency_beds_available + ' ER beds'));
      }
      $('hospital-pick').hidden = false;
    }
    if (next) stepButton(next[0], next[1], () => ambulanceStep(next[0]));
  }

  function showOrder(o) {
    const s = o.shipping;
    $('job-title').textContent = 'Delivery ' + o.order_number;
    $('job-text').textContent = '#' + o.id + ' · ' + o.status.replace(/_/g, ' ')
      + (o.payment_method === 'cod' && o.payment_status !== 'captured' ? ' · collect ' + rupees(o.total_paise) + ' cash' : ' · prepaid');
    const rows = [
      M.el('div', { id: 'job-address' }, [M.el('b', {}, s.name), ' · ', s.address + ', ' + s.city + ' ' + s.pincode]),
      s.phone ? M.el('div', {}, [M.el('a', { href: 'tel:' + s.phone }, 'Call ' + s.phone)]) : null,
      mapLink(s.lat, s.lng, s.name),
    ];
    $('job-details').append(...rows.filter(Boolean));
    const next = ORDER_NEXT[o.status];
    if (next) stepButton(next[0], next[1], () => orderStep(next[0]));
    if (o.status === 'out_for_delivery') {
      $('deliver-form').hidden = false;
      $('delivery-code').value = '';
    }
  }

  function showCollection(c) {
    $('job-title').textContent = 'Collection #' + c.id;
    $('job-text').textContent = '#' + c.id + ' · ' + c.status.replace(/_/g, ' ') + ' · ' + c.slot.date + ' ' + c.slot.window
      + ' · ' + (c.sample_types || []).join(', ');
    const rows = [
      M.el('div', { id: 'job-address' }, [M.el('b', {}, c.patient.name), ' · ', c.address]),
      c.patient.phone ? M.el('div', {}, [M.el('a', { href: 'tel:' + c.patient.phone }, 'Call ' + c.patient.phone)]) : null,
      mapLink(c.lat, c.lng, c.patient.name),
    ];
    if (c.sample_deadline) rows.push(M.el('div', { class: 'deadline' }, 'Samples must reach the lab by ' + istTime(c.sample_deadline)));
    $('job-details').append(...rows.filter(Boolean));
    const next = COLLECTION_NEXT[c.status];
    if (next) stepButton(next[0], next[1], () => collectionStep(next[0]));
  }

  function jobError(e) {
    const box = $('job-error');
    box.textContent = words(e);
    box.dataset.code = e.code || '';
    box.hidden = false;
  }

  async function ambulanceStep(status) {
    const body = { status };
    if (status === 'transporting') {
      const h = Number($('hospital').value);
      if (!h) { message('Pick a destination hospital first.', true); return; }
      body.hospital_id = h;
    }
    try {
      const updated = await M.api('/api/v1/emergency/units/' + unit.id + '/status', { method: 'PUT', body });
      Object.assign(unit, updated);
      showUnit();
      if (status === 'back_in_service') { message('Back in service.'); await refreshUnit(); return; }
      await loadJob(job);
    } catch (e) {
      jobError(e);
    }
  }

  async function orderStep(status) {
    try {
      const o = await M.api('/api/v1/orders/' + job.id + '/status', { method: 'PUT', body: { status } });
      job.data = o;
      showJob();
      message(status === 'shipped' ? 'Picked up.' : 'Out for delivery: ask the customer for the code at the door.');
    } catch (e) {
      jobError(e);
    }
  }

  async function deliver(ev) {
    ev.preventDefault();
    const code = $('delivery-code').value.trim();
    if (!/^\d{6}$/.test(code)) {
      jobError({ code: 'validation_failed', message: 'the code is the 6 digits the customer reads out' });
      return;
    }
    $('deliver').disabled = true;
    try {
      const o = await M.api('/api/v1/orders/' + job.id + '/deliver', { method: 'POST', body: { code } });
      message('Delivered ' + o.order_number + '. Thank you!');
      job = null;
      showJob();
      await refreshUnit();
    } catch (e) {
      jobError(e);
      $('delivery-code').select();
    } finally {
      $('deliver').disabled = false;
    }
  }

  async function collectionStep(status) {
    try {
      const c = await M.api('/api/v1/lab-collections/' + job.id + '/status', { method: 'PUT', body: { status } });
      collectionCache.set(c.id, c);
      message(status === 'at_lab' ? 'Samples handed in.' : status === 'collected' ? 'Samples collected: take them to the lab in time.' : 'On the way.');
      if (status === 'at_lab') await refreshUnit();
      else { job.data = c; showJob(); }
      queueRoute();
    } catch (e) {
      jobError(e);
    }
  }

  async function refreshUnit() {
    unit = await M.api('/api/v1/emergency/my-unit');
    showUnit();
    if (unit.open_offer) {
      showOffer(unit.open_offer, Date.now() + unit.open_offer.expires_in_s * 1000);
    }
    const current = unit.current_job;
    if (!sameJob(current, job)) await loadJob(current);
    else if (current && job && current.status !== job.data.status) await loadJob(current);
  }

  // ----------------------------------------------------------------------- today's collections

  // Refreshes the route once for a burst of events (an accept announces several).
  function queueRoute() {
    if (!unit || unit.kind !== 'phlebotomist' || routeQueued) return;
    routeQueued = true;
    setTimeout(() => { routeQueued = false; loadRoute(); }, 150);
  }

  async function collectionOf(id) {
    if (!collectionCache.has(id)) {
      try {
        collectionCache.set(id, await M.api('/api/v1/lab-collections/' + id));
      } catch (e) {
        collectionCache.set(id, null);
      }
    }
    return collectionCache.get(id);
  }

  async function loadRoute() {
    let route;
    try {
      route = await M.api('/api/v1/lab-collections/route?date=' + routeDate());
    } catch (e) {
      message('Today’s collections not loaded: ' + words(e), true);
      return;
    }
    const risky = new Set(route.at_risk || []);
    const items = [];
    for (const stop of route.stops) {
      const atRisk = stop.collection_ids.some((id) => risky.has(id));
      const attrs = { class: 'stop ' + stop.kind + (atRisk ? ' at-risk' : ''), 'data-kind': stop.kind, 'data-ids': stop.collection_ids.join(',') };
      if (stop.kind === 'lab_drop') {
        items.push(M.el('li', attrs, [
          M.el('b', {}, istTime(stop.arrive_at) + ' · Drop samples at the lab'),
          M.el('div', { class: 'muted' }, 'Collections ' + stop.collection_ids.map((id) => '#' + id).join(', ')),
        ]));
        continue;
      }
      const id = stop.collection_ids[0];
      const c = await collectionOf(id);
      items.push(M.el('li', attrs, [
        M.el('b', {}, istTime(stop.arrive_at) + ' · #' + id + (c ? ' · ' + c.patient.name : '')),
        c ? M.el('div', {}, c.address + ' · ' + c.slot.window) : null,
        M.el('div', { class: atRisk ? 'error' : 'muted' }, (stop.sample_deadline ? 'sample good until ' + istWhen(stop.sample_deadline, route.date) : '')
          + (atRisk ? ' · AT RISK' : '')),
      ]));
    }
    const list = $('collections-list');
    list.textContent = '';
    list.append(...items);
    const collects = route.stops.filter((s) => s.kind === 'collect').length;
    $('collections-summary').textContent = route.date + ' · ' + collects + ' collection' + (collects === 1 ? '' : 's')
      + (risky.size ? ' · ' + risky.size + ' at risk' : '') + (collects ? '' : ' · nothing planned yet');
    $('collections-title').textContent = route.date === indiaToday() ? 'Today’s collections' : 'Collections on ' + route.date;
    $('collections').hidden = false;
    $('collections').dataset.loaded = String(Date.now());
  }

  // ------------------------------------------------------------------------------------- events

  function jobOf(ev) {
    if (ev.request && typeof ev.request === 'object') return ev.request;
    if (ev.entity && typeof ev.entity === 'object') return ev.entity;
    if (ev.type === 'order_status_changed') return { kind: 'order', id: ev.order_id };
    if (ev.collection_id) return { kind: 'lab_collection', id: ev.collection_id };
    return null;
  }

  function onEvent(ev, topic, frameType) {
    const ref = jobOf(ev);
    if (frameType === 'offer' || ev.type === 'offer_made') {
      if (ref && ref.kind === offeredKind() && !(offer && sameJob(offer.request, ref))) {
        showOffer(ev, M.utcMs(ev.expires_at));
        // The delivery offer's order number comes with the open offer over REST.
        if (ref.kind === 'order') refreshUnit().catch(() => {});
      }
      return;
    }
    if (offer && sameJob(offer.request, ref) && ['offer_expired', 'claim_lost', 'offer_declined'].includes(ev.type)) {
      hideOffer(ev.type === 'offer_expired' ? 'The offer lapsed.' : 'The job went elsewhere.');
    }
    if (ev.type === 'unit_status' && unit && ev.unit_id === unit.id) {
      unit.status = ev.status;
      showUnit();
    }
    if (ev.type === 'unit_assigned' && unit && ev.unit === unit.id && !sameJob(ref, job)) refreshUnit().catch(() => {});
    const ourJob = job && sameJob(ref, job);
    if (ourJob && (ev.type === 'state_changed' || ev.type === 'order_status_changed')) {
      if (job.kind === 'lab_collection') refreshUnit().catch(() => {});
      else loadJob(job);
    }
    if (ref && ref.kind === 'lab_collection') {
      collectionCache.delete(ref.id);
      if (['state_changed', 'unit_assigned', 'lab_collection_at_risk'].includes(ev.type)) {
        queueRoute();
        if (!job) refreshUnit().catch(() => {});
      }
    }
  }

  const live = new M.Live({
    onOpen: async () => {
      if (pendingFix && !fixTimer) sendFix();
      try {
        await refreshUnit();
        await live.follow('unit:' + unit.id);
        if (unit.collector_id) await live.follow('collector:' + unit.collector_id);
        if (unit.kind === 'phlebotomist') await loadRoute();
      } catch (e) {
        message(e.status === 404 ? 'You are not on any unit’s crew; ask a dispatcher to add you.' : words(e), true);
      }
    },
    onEvent,
    onError: (e) => message(words(e), true),
  });

  $('on-duty').addEventListener('click', () => setAvailability('available'));
  $('off-duty').addEventListener('click', () => setAvailability('off_duty'));
  $('share-location').addEventListener('click', shareLocation);
  $('offer-accept').addEventListener('click', () => answer(true));
  $('offer-decline').addEventListener('click', () => answer(false));
  $('deliver-form').addEventListener('submit', deliver);
  if (sessionStorage.getItem(SHARING_KEY)) shareLocation();
})();
