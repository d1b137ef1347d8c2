// The back office (/admin, staff and administrators): catalog, prescription review, orders (only the
// legal next statuses are offered, as the server lists them), ambulance units, hospital beds, blood
// stock, and analytics drawn as plain SVG. Every change goes through the REST API; orders shown are
// followed over the websocket so a change made elsewhere (a rider, another desk) refreshes the list.
'use strict';
(function () {
  const { api, el, svg } = OneMedi;
  const me = OneMedi.requireLogin(['admin', 'staff']);
  if (!me) return;
  const $ = (id) => document.getElementById(id);
  const PER_PAGE = 20;
  const IST_MS = 330 * 60 * 1000;

  // ------------------------------------------------------------------ helpers

  function flash(text, ok) {
    const f = $('flash');
    f.textContent = text;
    f.className = ok ? 'ok' : 'error';
    f.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { f.hidden = true; }, 6000);
  }

  function problem(e) {
    if (e && e.details && typeof e.details === 'object') {
      const fields = Object.entries(e.details).map(([k, v]) => k + ': ' + v).join('; ');
      if (fields) return e.message + ' (' + fields + ')';
    }
    return (e && e.message) || String(e);
  }

  // "12.5" → 1250 paise; null when it is not a non-negative amount with at most two decimals.
  function paise(text) {
    const t = String(text).trim();
    if (!/^\d{1,7}(\.\d{1,2})?$/.test(t)) return null;
    const [r, p = ''] = t.split('.');
    return Number(r) * 100 + Number((p + '00').slice(0, 2));
  }

  function rupees(p) {
    return (p / 100).toLocaleString('en-IN', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  // A naive UTC timestamp from the API, shown in India time.
  function ist(text) {
    const ms = OneMedi.utcMs(text);
    if (ms === null) return '—';
    const d = new Date(ms + IST_MS).toISOString();
    return d.slice(8, 10) + '/' + d.slice(5, 7) + ' ' + d.slice(11, 16);
  }

  function indiaToday() {
    return new Date(Date.now() + IST_MS).toISOString().slice(0, 10);
  }

  function shiftDate(date, days) {
    return new Date(Date.parse(date + 'T00:00:00Z') + days * 86400000).toISOString().slice(0, 10);
  }

  function replaceRows(tbody, rows, empty, columns) {
    tbody.textContent = '';
    if (!rows.length) tbody.append(el('tr', {}, el('td', { colspan: columns, class: 'muted' }, empty)));
    else tbody.append(...rows);
  }

  // ------------------------------------------------------------------ tabs

  const loaded = new Set();
  const loaders = {};

  function show(tab) {
    if (!loaders[tab]) tab = 'catalog';
    for (const b of document.querySelectorAll('.tabs button')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    for (const s of document.querySelectorAll('section.tab')) s.hidden = s.dataset.tab !== tab;
    if (location.hash !== '#' + tab) history.replaceState(null, '', '#' + tab);
    if (!loaded.has(tab)) {
      loaded.add(tab);
      loaders[tab]().catch((e) => flash(problem(e)));
    }
  }

  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => show(b.dataset.tab));

  // ------------------------------------------------------------------ catalog

  const catalog = { page: 1, total: 0, q: '', categories: [], brands: [] };

  async function loadMedicines() {
    const params = new URLSearchParams({ page: catalog.page, per_page: PER_PAGE, sort: 'newest' });
    if (catalog.q) params.set('q', catalog.q);
    const list = await api('/api/v1/medicines?' + params);
    catalog.total = list.total;
    const rows = list.items.map((m) => {
      const price = el('input', { class: 'num', value: (m.price_paise / 100).toFixed(2), 'aria-label': 'Price of ' + m.name, inputmode: 'decimal' });
      // Stock moves as a relative adjustment, applied to the count as it is when saved: checkouts
      // running meanwhile keep their units, and the count shown here may be slightly old.
      const adjust = el('input', { class: 'num', type: 'number', step: 1, placeholder: '± units', 'aria-label': 'Add to or remove from the stock of ' + m.name });
      const save = el('button', { type: 'button', class: 'save' }, 'Save');
      const off = el('button', { type: 'button', class: 'deactivate' }, 'Deactivate');
      save.addEventListener('click', async () => {
        const price_paise = paise(price.value);
        const delta = adjust.value.trim() === '' ? 0 : Number(adjust.value);
        if (price_paise === null || !Number.isInteger(delta)) { flash('Price must be rupees (e.g. 30.50) and the stock change a whole number (negative to remove)'); return; }
        const body = {};
        if (price_paise !== m.price_paise) body.price_paise = price_paise;
        if (delta !== 0) body.stock_delta = delta;
        if (Object.keys(body).length === 0) { flash('Nothing to save for ' + m.name); return; }
        try {
          const saved = await api('/api/v1/admin/medicines/' + m.id, { method: 'PUT', body });
          flash(m.name + ' saved' + (delta !== 0 ? ' · stock now ' + saved.stock : ''), true);
          await loadMedicines();
        } catch (e) { flash(problem(e)); }
      });
      off.addEventListener('click', async () => {
        try {
          await api('/api/v1/admin/medicines/' + m.id, { method: 'DELETE' });
          flash(m.name + ' deactivated', true);
          await loadMedicines();
        } catch (e) { flash(problem(e)); }
      });
      return el('tr', { dataset: { medicineId: m.id } }, [
        el('td', {}, [el('b', {}, m.name), el('br'), el('span', { class: 'muted small' }, m.salt_composition)]),
        el('td', {}, m.pack_size),
        el('td', {}, price),
        el('td', {}, [el('span', { class: 'muted' }, String(m.stock)), ' ', adjust]),
        el('td', {}, m.prescription_required ? 'Rx' : ''),
        el('td', { class: 'actions' }, [save, off]),
      ]);
    });
    replaceRows($('med-list'), rows, 'No medicines match.', 6);
    const pages = Math.max(1, Math.ceil(list.total / PER_PAGE));
    $('med-page').textContent = 'page ' + catalog.page + ' of ' + pages + ' · ' + list.total + ' medicines';
    $('med-prev').disabled = catalog.page <= 1;
    $('med-next').disabled = catalog.page >= pages;
  }

  function namedList(ul, items, save) {
    ul.textContent = '';
    for (const item of items) {
      const name = el('input', { value: item.name, maxlength: 100, 'aria-label': 'Name' });
      const button = el('button', { type: 'button' }, 'Rename');
      button.addEventListener('click', () => save(item, name.value.trim()));
      ul.append(el('li', { dataset: { id: item.id } }, [name, button, item.is_active ? null : el('span', { class: 'muted' }, ' inactive')]));
    }
  }

  async function loadTaxonomy() {
    const [categories, brands] = await Promise.all([api('/api/v1/medicines/categories'), api('/api/v1/medicines/brands')]);
    catalog.categories = categories;
    catalog.brands = brands;
    const cat = $('med-category');
    cat.textContent = '';
    for (const c of categories) cat.append(el('option', { value: c.id }, c.name));
    const brand = $('med-brand');
    brand.textContent = '';
    brand.append(el('option', { value: '' }, '— none —'));
    for (const b of brands) brand.append(el('option', { value: b.id }, b.name));
    namedList($('cat-list'), categories, async (c, name) => {
      try {
        await api('/api/v1/admin/medicine-categories/' + c.id, { method: 'PUT', body: { name, description: c.description, image_url: c.image_url, sort_order: c.sort_order, is_active: c.is_active } });
        flash('Category renamed', true);
        await loadTaxonomy();
      } catch (e) { flash(problem(e)); }
    });
    namedList($('brand-list'), brands, async (b, name) => {
      try {
        await api('/api/v1/admin/brands/' + b.id, { method: 'PUT', body: { name, manufacturer: b.manufacturer, logo_url: b.logo_url, is_active: b.is_active } });
        flash('Brand renamed', true);
        await loadTaxonomy();
      } catch (e) { flash(problem(e)); }
    });
  }

  loaders.catalog = async () => {
    await Promise.all([loadTaxonomy(), loadMedicines()]);
  };

  $('med-search').addEventListener('submit', (ev) => {
    ev.preventDefault();
    catalog.q = $('med-q').value.trim();
    catalog.page = 1;
    loadMedicines().catch((e) => flash(problem(e)));
  });
  $('med-prev').addEventListener('click', () => { catalog.page -= 1; loadMedicines().catch((e) => flash(problem(e))); });
  $('med-next').addEventListener('click', () => { catalog.page += 1; loadMedicines().catch((e) => flash(problem(e))); });

  $('med-create').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('med-create-result');
    const price = paise($('med-price').value);
    const mrp = paise($('med-mrp').value);
    if (price === null || mrp === null) {
      out.textContent = 'Price and MRP are rupees, e.g. 30 or 30.50';
      out.className = 'error';
      return;
    }
    const body = {
      name: $('med-name').value.trim(),
      salt_composition: $('med-salt').value.trim(),
      category_id: Number($('med-category').value),
      dosage_form: $('med-form').value,
      pack_size: $('med-pack').value.trim(),
      price_paise: price,
      mrp_paise: mrp,
      gst_rate_percent: Number($('med-gst').value),
      stock: Number($('med-stock').value),
      prescription_required: $('med-rx').checked,
    };
    if ($('med-brand').value) body.brand_id = Number($('med-brand').value);
    try {
      const created = await api('/api/v1/admin/medicines', { method: 'POST', body });
      out.textContent = 'Created ' + created.name + ' (#' + created.id + ')';
      out.className = 'ok';
      out.dataset.medicineId = created.id;
      $('med-create').reset();
      catalog.q = '';
      catalog.page = 1;
      $('med-q').value = '';
      await loadMedicines();
    } catch (e) {
      out.textContent = problem(e);
      out.className = 'error';
    }
  });

  $('cat-create').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('/api/v1/admin/medicine-categories', { method: 'POST', body: { name: $('cat-name').value.trim() } });
      $('cat-name').value = '';
      await loadTaxonomy();
    } catch (e) { flash(problem(e)); }
  });

  $('brand-create').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { name: $('brand-name').value.trim() };
    if ($('brand-maker').value.trim()) body.manufacturer = $('brand-maker').value.trim();
    try {
      await api('/api/v1/admin/brands', { method: 'POST', body });
      $('brand-create').reset();
      await loadTaxonomy();
    } catch (e) { flash(problem(e)); }
  });

  // ------------------------------------------------------------------ prescriptions

  // The file needs the bearer token, so it is fetched here: images are shown (as a data: URL, which the
  // page's policy allows), PDFs are offered as a download.
  async function viewFile(rx) {
    const viewer = $('rx-viewer');
    viewer.textContent = 'Loading…';
    viewer.hidden = false;
    try {
      const s = OneMedi.session();
      const res = await fetch('/api/v1/users/prescriptions/' + rx.id + '/file', { headers: { Authorization: 'Bearer ' + s.token }, cache: 'no-store' });
      if (!res.ok) throw new Error('the file could not be read (' + res.status + ')');
      const blob = await res.blob();
      const title = el('h3', {}, 'Prescription #' + rx.id + (rx.original_filename ? ' · ' + rx.original_filename : ''));
      const close = el('button', { type: 'button' }, 'Close');
      close.addEventListener('click', () => { viewer.hidden = true; viewer.textContent = ''; });
      viewer.textContent = '';
      if (blob.type.startsWith('image/')) {
        const url = await new Promise((ok, fail) => {
          const r = new FileReader();
          r.onload = () => ok(r.result);
          r.onerror = () => fail(r.error);
          r.readAsDataURL(blob);
        });
        viewer.append(title, el('img', { src: url, alt: 'Prescription ' + rx.id, id: 'rx-image' }), close);
      } else {
        const link = el('a', { href: URL.createObjectURL(blob), download: rx.original_filename || 'prescription-' + rx.id + '.pdf', id: 'rx-download' }, 'Download the PDF (' + Math.ceil(blob.size / 1024) + ' KB)');
        viewer.append(title, el('p', {}, link), close);
      }
    } catch (e) {
      viewer.textContent = problem(e);
    }
  }

  async function loadPrescriptions() {
    const status = $('rx-status').value;
    const list = await api('/api/v1/admin/prescriptions?per_page=50&status=' + encodeURIComponent(status));
    const rows = list.items.map((rx) => {
      const view = el('button', { type: 'button', class: 'view' }, 'View');
      view.addEventListener('click', () => viewFile(rx));
      let decision;
      if (rx.status === 'pending') {
        const notes = el('input', { class: 'reason', maxlength: 500, placeholder: 'Notes / reason for rejecting', 'aria-label': 'Notes' });
        const approve = el('button', { type: 'button', class: 'approve primary' }, 'Approve');
        const reject = el('button', { type: 'button', class: 'reject' }, 'Reject');
        const decide = async (verdict) => {
          const text = notes.value.trim();
          if (verdict === 'rejected' && !text) { flash('Give the reason for rejecting'); notes.focus(); return; }
          const body = { status: verdict };
          if (text) body.notes = text;
          try {
            await api('/api/v1/admin/prescriptions/' + rx.id + '/review', { method: 'PUT', body });
            flash('Prescription #' + rx.id + ' ' + verdict, true);
            await loadPrescriptions();
          } catch (e) { flash(problem(e)); }
        };
        approve.addEventListener('click', () => decide('approved'));
        reject.addEventListener('click', () => decide('rejected'));
        decision = el('div', { class: 'decide' }, [notes, approve, reject]);
      } else {
        decision = el('span', { class: 'muted' }, rx.review_notes || '');
      }
      return el('tr', { dataset: { prescriptionId: rx.id } }, [
        el('td', {}, String(rx.id)),
        el('td', {}, rx.patient_name || '—'),
        el('td', {}, rx.doctor_name || '—'),
        el('td', {}, ist(rx.created_at)),
        el('td', {}, view),
        el('td', {}, el('span', { class: 'status st-' + rx.status }, rx.status)),
        el('td', {}, decision),
      ]);
    });
    replaceRows($('rx-list'), rows, 'Nothing ' + status + '.', 7);
  }

  loaders.prescriptions = loadPrescriptions;
  $('rx-status').addEventListener('change', () => loadPrescriptions().catch((e) => flash(problem(e))));

  // ------------------------------------------------------------------ orders

  const orders = { page: 1 };

  async function loadOrders() {
    const params = new URLSearchParams({ page: orders.page, per_page: PER_PAGE });
    if ($('order-status').value) params.set('status', $('order-status').value);
    const list = await api('/api/v1/admin/orders?' + params);
    const rows = list.items.map((o) => {
      const moves = o.next_statuses.map((to) => {
        const b = el('button', { type: 'button', class: 'move' + (to === 'cancelled' ? ' danger' : ''), dataset: { to } }, to.replace(/_/g, ' '));
        b.addEventListener('click', async () => {
          b.disabled = true;
          try {
            await api('/api/v1/orders/' + o.id + '/status', { method: 'PUT', body: { status: to } });
            flash(o.order_number + ' → ' + to.replace(/_/g, ' '), true);
          } catch (e) { flash(problem(e)); }
          await loadOrders().catch((e) => flash(problem(e)));
        });
        return b;
      });
      if (live && live.topics.size < 40) live.follow('order:' + o.id).catch(() => {});
      return el('tr', { dataset: { orderId: o.id, status: o.status } }, [
        el('td', {}, o.order_number),
        el('td', {}, o.ship_name + ', ' + o.ship_city),
        el('td', { class: 'num' }, rupees(o.total_paise)),
        el('td', {}, o.payment_method + ' · ' + o.payment_status),
        el('td', {}, ist(o.placed_at)),
        el('td', {}, el('span', { class: 'status st-' + o.status }, o.status.replace(/_/g, ' '))),
        el('td', { class: 'actions' }, moves.length ? moves : el('span', { class: 'muted' }, 'final')),
      ]);
    });
    replaceRows($('order-list'), rows, 'No orders.', 7);
    const pages = Math.max(1, Math.ceil(list.total / PER_PAGE));
    $('order-page').textContent = 'page ' + orders.page + ' of ' + pages + ' · ' + list.total + ' orders';
    $('order-prev').disabled = orders.page <= 1;
    $('order-next').disabled = orders.page >= pages;
  }

  loaders.orders = loadOrders;
  $('order-status').addEventListener('change', () => { orders.page = 1; loadOrders().catch((e) => flash(problem(e))); });
  $('order-prev').addEventListener('click', () => { orders.page -= 1; loadOrders().catch((e) => flash(problem(e))); });
  $('order-next').addEventListener('click', () => { orders.page += 1; loadOrders().catch((e) => flash(problem(e))); });

  // ------------------------------------------------------------------ units, hospitals, blood banks

  async function loadUnits() {
    try {
      const list = await api('/api/v1/emergency/units?per_page=100');
      const rows = list.items.map((u) => el('tr', { dataset: { unitId: u.id } }, [
        el('td', {}, u.call_sign),
        el('td', {}, u.kind.toUpperCase()),
        el('td', {}, [el('span', { class: 'dot st-' + u.status }), ' ' + u.status.replace(/_/g, ' ')]),
        el('td', {}, u.station_name || '—'),
        el('td', {}, u.crew.map((c) => c.name).join(', ') || '—'),
      ]));
      replaceRows($('unit-list'), rows, 'No units.', 5);
    } catch (e) {
      if (e.status !== 403) throw e;
      $('unit-note').textContent = 'Ambulance units are managed by dispatchers and administrators.';
      $('unit-note').hidden = false;
      $('unit-create').hidden = true;
    }
  }

  async function loadHospitals() {
    const list = await api('/api/v1/hospitals?per_page=100');
    const rows = list.items.map((h) => {
      const input = (kind) => el('input', { class: 'num', type: 'number', min: 0, max: h.beds[kind].total, value: h.beds[kind].available, 'aria-label': kind + ' beds at ' + h.name, dataset: { kind } });
      const inputs = { general: input('general'), icu: input('icu'), emergency: input('emergency') };
      const save = el('button', { type: 'button', class: 'save' }, 'Update');
      save.addEventListener('click', async () => {
        try {
          await api('/api/v1/hospitals/' + h.id + '/beds', {
            method: 'PUT',
            body: {
              general_available: Number(inputs.general.value),
              icu_available: Number(inputs.icu.value),
              emergency_available: Number(inputs.emergency.value),
              version: h.version,
            },
          });
          flash('Beds at ' + h.name + ' updated', true);
          await loadHospitals();
        } catch (e) { flash(problem(e)); }
      });
      const cell = (kind) => el('td', {}, [inputs[kind], el('span', { class: 'muted small' }, ' / ' + h.beds[kind].total)]);
      return el('tr', { dataset: { hospitalId: h.id } }, [el('td', {}, h.name), cell('general'), cell('icu'), cell('emergency'), el('td', {}, save)]);
    });
    replaceRows($('hospital-list'), rows, 'No hospitals.', 5);
  }

  const GROUPS = ['A+', 'A-', 'B+', 'B-', 'AB+', 'AB-', 'O+', 'O-'];
  const COMPONENTS = ['whole_blood', 'red_cells', 'plasma', 'platelets'];

  async function loadBanks() {
    const list = await api('/api/v1/blood-banks?per_page=100');
    const rows = list.items.map((b) => {
      const group = el('select', { 'aria-label': 'Blood group' }, GROUPS.map((g) => el('option', {}, g)));
      const component = el('select', { 'aria-label': 'Component' }, COMPONENTS.map((c) => el('option', { value: c }, c.replace(/_/g, ' '))));
      const units = el('input', { class: 'num', type: 'number', min: 0, value: 0, 'aria-label': 'Units available' });
      const set = el('button', { type: 'button', class: 'save' }, 'Set');
      set.addEventListener('click', async () => {
        try {
          await api('/api/v1/blood-banks/' + b.id + '/stock', { method: 'PUT', body: { blood_group: group.value, component: component.value, units_available: Number(units.value) } });
          flash(b.name + ': ' + group.value + ' ' + component.value.replace(/_/g, ' ') + ' set to ' + units.value, true);
          await loadBanks();
        } catch (e) { flash(problem(e)); }
      });
      const stock = b.stock.length
        ? b.stock.map((s) => s.blood_group + ' ' + s.component.replace(/_/g, ' ') + ': ' + s.units_available + '/' + s.units_reserved).join(' · ')
        : '—';
      return el('tr', { dataset: { bankId: b.id } }, [el('td', {}, b.name), el('td', { class: 'small' }, stock), el('td', { class: 'actions' }, [group, component, units, set])]);
    });
    replaceRows($('bank-list'), rows, 'No blood banks.', 3);
  }

  loaders.facilities = async () => {
    await Promise.all([loadUnits(), loadHospitals(), loadBanks()]);
  };

  $('unit-create').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const out = $('unit-create-result');
    const body = {
      call_sign: $('unit-call-sign').value.trim(),
      kind: $('unit-kind').value,
      home: { lat: Number($('unit-lat').value), lng: Number($('unit-lng').value) },
    };
    if ($('unit-station').value.trim()) body.station_name = $('unit-station').value.trim();
    try {
      const unit = await api('/api/v1/emergency/units', { method: 'POST', body });
      out.textContent = 'Created ' + unit.call_sign + ' (off duty until its crew signs on)';
      out.className = 'ok';
      $('unit-call-sign').value = '';
      await loadUnits();
    } catch (e) {
      out.textContent = problem(e);
      out.className = 'error';
    }
  });

  // ------------------------------------------------------------------ analytics

  const W = 640;
  const H = 240;
  const PAD = { left: 56, right: 12, top: 14, bottom: 34 };

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function axes(chart, max, format) {
    const plotH = H - PAD.top - PAD.bottom;
    for (let i = 0; i <= 4; i++) {
      const y = PAD.top + plotH - (plotH * i) / 4;
      chart.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: i ? 'grid-line' : 'axis' }));
      const label = svg('text', { x: PAD.left - 6, y: y + 4, class: 'tick', 'text-anchor': 'end' });
      label.textContent = format((max * i) / 4);
      chart.append(label);
    }
  }

  // Bars for a value per day; labels under every nth bar so they never overlap.
  // Counts get a scale in whole steps (at least 0–4), so no tick repeats a rounded label.
  function dayBars(chart, days, value, format, kind, whole) {
    chart.textContent = '';
    const top = niceMax(Math.max(0, ...days.map(value)));
    const max = whole ? Math.max(4, Math.ceil(top / 4) * 4) : top;
    axes(chart, max, format);
    const plotW = W - PAD.left - PAD.right;
    const plotH = H - PAD.top - PAD.bottom;
    const step = plotW / Math.max(1, days.length);
    const every = Math.max(1, Math.ceil(days.length / 8));
    days.forEach((d, i) => {
      const v = value(d);
      const h = (plotH * v) / max;
      const x = PAD.left + i * step + step * 0.15;
      const bar = svg('rect', { x, y: PAD.top + plotH - h, width: Math.max(1, step * 0.7), height: h, class: 'bar ' + kind, 'data-date': d.date, 'data-value': v });
      const tip = svg('title');
      tip.textContent = d.date + ': ' + format(v);
      bar.append(tip);
      chart.append(bar);
      if (i % every === 0) {
        const t = svg('text', { x: PAD.left + i * step + step / 2, y: H - PAD.bottom + 16, class: 'tick', 'text-anchor': 'middle' });
        t.textContent = d.date.slice(8, 10) + '/' + d.date.slice(5, 7);
        chart.append(t);
      }
    });
  }

  // Per ARP category: the achieved 90th centile as a bar, the target as a line across it (minutes).
  function arpChart(chart, categories) {
    chart.textContent = '';
    const minutes = (s) => s / 60;
    const max = niceMax(Math.max(...categories.map((c) => Math.max(minutes(c.target.p90_s), minutes(c.p90_response_s || 0)))));
    axes(chart, max, (v) => Math.round(v) + ' min');
    const plotW = W - PAD.left - PAD.right;
    const plotH = H - PAD.top - PAD.bottom;
    const step = plotW / categories.length;
    categories.forEach((c, i) => {
      const x = PAD.left + i * step + step * 0.25;
      const width = step * 0.5;
      const p90 = c.p90_response_s === null ? 0 : minutes(c.p90_response_s);
      const h = (plotH * p90) / max;
      const over = c.p90_response_s !== null && c.p90_response_s > c.target.p90_s;
      const bar = svg('rect', { x, y: PAD.top + plotH - h, width, height: h, class: 'bar arp' + (over ? ' over' : ''), 'data-category': c.category, 'data-value': c.p90_response_s === null ? '' : c.p90_response_s });
      const tip = svg('title');
      tip.textContent = 'C' + c.category + ': 90th centile ' + OneMedi.clock(c.p90_response_s) + ', target ' + OneMedi.clock(c.target.p90_s);
      bar.append(tip);
      chart.append(bar);
      const ty = PAD.top + plotH - (plotH * minutes(c.target.p90_s)) / max;
      chart.append(svg('line', { x1: x - 8, x2: x + width + 8, y1: ty, y2: ty, class: 'target', 'data-category': c.category }));
      const label = svg('text', { x: x + width / 2, y: H - PAD.bottom + 16, class: 'tick', 'text-anchor': 'middle' });
      label.textContent = 'C' + c.category + ' (' + c.responded + ')';
      chart.append(label);
    });
  }

  function pct(x) {
    return x === null || x === undefined ? '—' : Math.round(x * 100) + '%';
  }

  async function loadAnalytics() {
    const from = $('an-from').value;
    const to = $('an-to').value;
    const data = await api('/api/v1/admin/analytics?from=' + encodeURIComponent(from) + '&to=' + encodeURIComponent(to));
    const o = data.orders;
    $('an-summary').textContent = data.days + ' days · ' + o.total + ' orders · revenue ₹' + rupees(o.revenue_paise) + ' · refunded ₹' + rupees(o.refunded_paise);
    dayBars($('chart-orders'), o.per_day, (d) => d.orders, (v) => String(Math.round(v)), 'orders', true);
    dayBars($('chart-revenue'), o.per_day, (d) => d.revenue_paise / 100, (v) => v >= 1000 ? (v / 1000).toFixed(v % 1000 ? 1 : 0) + 'k' : String(Math.round(v)), 'revenue', false);
    arpChart($('chart-arp'), data.ambulance_response);
    replaceRows($('an-arp'), data.ambulance_response.map((c) => el('tr', {}, [
      el('td', {}, 'C' + c.category), el('td', {}, String(c.requests)), el('td', {}, String(c.responded)),
      el('td', {}, OneMedi.clock(c.mean_response_s)), el('td', {}, OneMedi.clock(c.p90_response_s)),
      el('td', {}, OneMedi.clock(c.target.p90_s)), el('td', {}, pct(c.within_target)),
    ])), 'No calls.', 7);
    replaceRows($('an-status'), o.by_status.map((s) => el('tr', {}, [el('td', {}, s.status.replace(/_/g, ' ')), el('td', { class: 'num' }, String(s.count))])), 'No orders.', 2);
    replaceRows($('an-bookings'), data.bookings.map((b) => el('tr', {}, [
      el('td', {}, b.service.replace(/_/g, ' ')), el('td', { class: 'num' }, String(b.total)),
      el('td', { class: 'small muted' }, b.by_status.map((s) => s.status.replace(/_/g, ' ') + ' ' + s.count).join(' · ')),
    ])), 'No bookings.', 3);
    replaceRows($('an-collectors'), data.collectors.map((c) => el('tr', {}, [
      el('td', {}, c.name), el('td', { class: 'num' }, String(c.assigned)), el('td', { class: 'num' }, String(c.capacity)),
      el('td', {}, [el('span', { class: 'meter' }, el('span', { class: 'fill', dataset: { share: Math.min(100, Math.round((c.utilisation || 0) * 100)) } })), ' ' + pct(c.utilisation)]),
    ])), 'No phlebotomists.', 4);
    // Widths from data attributes: the policy allows no inline styles, so the meter is an SVG-free CSS trick.
    for (const fill of document.querySelectorAll('#an-collectors .fill')) fill.classList.add('w' + Math.round(Number(fill.dataset.share) / 10) * 10);
    $('tab-analytics').dataset.loaded = 'true';
  }

  loaders.analytics = loadAnalytics;
  $('an-to').value = indiaToday();
  $('an-from').value = shiftDate(indiaToday(), -29);
  $('an-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    loadAnalytics().catch((e) => flash(problem(e)));
  });

  // ------------------------------------------------------------------ live updates

  let refreshTimer = null;
  const live = new OneMedi.Live({
    onOpen() {
      if (loaded.has('orders')) loadOrders().catch((e) => flash(problem(e)));
    },
    onEvent(event) {
      if (event && event.type === 'order_status_changed' && loaded.has('orders')) {
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(() => loadOrders().catch((e) => flash(problem(e))), 200);
      }
    },
    onError(e) { flash(problem(e)); },
  });

  show(location.hash.slice(1) || 'catalog');
})();
