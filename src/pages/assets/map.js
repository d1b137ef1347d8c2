// The map every page draws (console, tracking): Leaflet (vendored, /assets/vendor/leaflet/) with pan and
// zoom, on raster tiles when `maps.tile_url` is configured (GET /api/v1/map/config) or else on the H3
// cell grid from GET /api/v1/map/cells, drawn as a Leaflet layer and re-read as the view moves (works
// offline). Pages put their marks in SVG groups (`layer(name)` → <g id="map-NAME">) placed by
// latitude/longitude (`place`); the map re-projects them on zoom, hides labels that would overlap, and
// shows marks outside the view as arrows on its edge (`edges`). Used as `OneMedi.createMap`.
'use strict';
(function () {
  const M = window.OneMedi;
  const L = window.L;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  // The overlay covers the view and half a view around it, so a pan shows marks before moveend.
  const PAD = 0.5;
  // H3 resolutions by zoom, and their edge lengths (km): cells stay a readable size on screen.
  const EDGE_KM = { 6: 3.72, 7: 1.41, 8: 0.53, 9: 0.2 };
  // The server draws at most 5000 cells; ask for fewer.
  const MAX_CELLS = 3000;
  const EDGE_MARGIN = 16;

  let configRead = null;
  function mapConfig() {
    if (!configRead) configRead = M.api('/api/v1/map/config').catch(() => ({ tile_url: null }));
    return configRead;
  }

  function resolutionFor(zoom) {
    return zoom <= 10 ? 6 : zoom <= 12 ? 7 : zoom <= 14 ? 8 : 9;
  }

  // An SVG layer in a Leaflet pane whose children are positioned in layer points: a pan moves the pane
  // (nothing to redraw); a zoom re-projects every child that carries its coordinates.
  const SvgLayer = L.Layer.extend({
    initialize(pane, className) {
      this.options = { pane };
      this.svg = document.createElementNS(SVG_NS, 'svg');
      this.svg.setAttribute('class', 'map-svg ' + className);
    },
    onAdd(map) {
      this.getPane().appendChild(this.svg);
      map.on('moveend', this.frame, this);
      map.on('zoomend viewreset', this.reproject, this);
      this.frame();
    },
    onRemove(map) {
      this.svg.remove();
      map.off('moveend', this.frame, this);
      map.off('zoomend viewreset', this.reproject, this);
    },
    frame() {
      const size = this._map.getSize();
      const min = this._map.containerPointToLayerPoint(size.multiplyBy(-PAD)).round();
      const w = Math.round(size.x * (1 + 2 * PAD));
      const h = Math.round(size.y * (1 + 2 * PAD));
      L.DomUtil.setPosition(this.svg, min);
      this.svg.setAttribute('width', w);
      this.svg.setAttribute('height', h);
      this.svg.setAttribute('viewBox', min.x + ' ' + min.y + ' ' + w + ' ' + h);
    },
    point(lat, lng) {
      return this._map.latLngToLayerPoint([lat, lng]);
    },
    // Places a mark (<g>) at a position; it stays there across zooms.
    place(node, lat, lng) {
      node.dataset.lat = lat;
      node.dataset.lng = lng;
      const p = this.point(lat, lng);
      node.setAttribute('transform', 'translate(' + p.x.toFixed(1) + ',' + p.y.toFixed(1) + ')');
    },
    // A polygon over `ring` ([[lat, lng], …]).
    outline(node, ring) {
      node._ring = ring;
      node.setAttribute('points', ring.map(([la, ln]) => {
        const p = this.point(la, ln);
        return p.x.toFixed(1) + ',' + p.y.toFixed(1);
      }).join(' '));
    },
    reproject() {
      if (!this._map) return;
      this.frame();
      for (const node of this.svg.querySelectorAll('[data-lat]')) this.place(node, Number(node.dataset.lat), Number(node.dataset.lng));
      for (const node of this.svg.querySelectorAll('polygon')) if (node._ring) this.outline(node, node._ring);
    },
  });

  // The H3 cell grid as the base of the map, re-read when the view leaves the drawn disk or the zoom
  // wants another resolution.
  class CellGrid {
    constructor(map) {
      this.map = map;
      map.createPane('cells');
      map.getPane('cells').style.zIndex = 250;
      this.layer = new SvgLayer('cells', 'map-cells-svg').addTo(map);
      this.group = document.createElementNS(SVG_NS, 'g');
      this.group.id = 'map-cells';
      this.layer.svg.append(this.group);
      this.drawn = null; // { center: L.LatLng, radiusKm, resolution }
      this.reading = null;
      map.on('moveend', () => this.refresh());
    }

    covers(view, resolution) {
      const d = this.drawn;
      if (!d || d.resolution !== resolution) return false;
      const corners = [view.getNorthWest(), view.getSouthEast(), view.getNorthEast(), view.getSouthWest()];
      return corners.every((c) => d.center.distanceTo(c) / 1000 < d.radiusKm * 0.92);
    }

    async refresh() {
      const map = this.map;
      const view = map.getBounds();
      const resolution = resolutionFor(map.getZoom());
      if (this.reading || this.covers(view, resolution)) return;
      const center = view.getCenter();
      const halfDiagonalKm = center.distanceTo(view.getNorthEast()) / 1000;
      const edge = EDGE_KM[resolution] * Math.sqrt(3);
      const maxRings = Math.floor((-3 + Math.sqrt(9 + 12 * (MAX_CELLS - 1))) / 6);
      const radiusKm = Math.max(1, Math.min(40, halfDiagonalKm * 1.4, maxRings * edge));
      const near = center.lat.toFixed(4) + ',' + center.lng.toFixed(4);
      this.reading = M.api('/api/v1/map/cells?near=' + near + '&radius_km=' + radiusKm.toFixed(1) + '&resolution=' + resolution);
      let cells;
      try {
        cells = await this.reading;
      } finally {
        this.reading = null;
      }
      this.drawn = { center, radiusKm, resolution };
      const g = this.group;
      g.textContent = '';
      for (const c of cells.cells) {
        const poly = document.createElementNS(SVG_NS, 'polygon');
        poly.setAttribute('class', c.cell === cells.center_cell ? 'cell center' : 'cell');
        poly.dataset.cell = c.cell;
        this.layer.outline(poly, c.boundary);
        g.append(poly);
      }
      // The view may have moved on while the cells were read.
      if (!this.covers(map.getBounds(), resolutionFor(map.getZoom()))) this.refresh();
    }
  }

  class MapView {
    constructor(el, options) {
      this.el = el;
      this.options = options;
      this.map = L.map(el, { zoomAnimation: false, markerZoomAnimation: false, fadeAnimation: false, worldCopyJump: false, attributionControl: true });
      this.map.attributionControl.setPrefix('Leaflet');
      this.marks = new SvgLayer('overlayPane', 'map-marks-svg');
      this.groups = new Map();
      this.edgeBox = L.DomUtil.create('div', 'map-edges', el);
      this.edgeItems = [];
      this.decluttering = false;
      this.map.on('zoomend moveend resize', () => { this.drawEdges(); this.declutter(); });
      if (options.onClick) this.map.on('click', (e) => options.onClick(e.latlng.lat, e.latlng.lng));
    }

    async start(view) {
      this.setView(view);
      this.marks.addTo(this.map);
      for (const name of this.options.layers || []) this.layer(name);
      const config = await mapConfig();
      if (config.tile_url) {
        this.base = 'tiles';
        L.tileLayer(config.tile_url, { maxZoom: 19, attribution: config.tile_attribution ? M.escapeHtml(config.tile_attribution) : '' }).addTo(this.map);
      } else {
        this.base = 'cells';
        this.grid = new CellGrid(this.map);
        await this.grid.refresh().catch(() => {});
      }
      this.el.dataset.base = this.base;
      return this;
    }

    // `view`: {center: [lat, lng], zoom} or {bounds: [[lat, lng], …]} (fitted).
    setView(view) {
      if (view.bounds && view.bounds.length > 1) this.map.fitBounds(view.bounds, { padding: [40, 40], maxZoom: view.maxZoom || 15 });
      else {
        const c = view.center || (view.bounds && view.bounds[0]) || [12.9716, 77.5946];
        this.map.setView(c, view.zoom || 13);
      }
    }

    // The SVG group for a kind of mark, created on first use (later groups draw on top).
    layer(name) {
      let g = this.groups.get(name);
      if (!g) {
        g = document.createElementNS(SVG_NS, 'g');
        g.id = 'map-' + name;
        this.marks.svg.append(g);
        this.groups.set(name, g);
      }
      return g;
    }

    place(node, lat, lng) {
      this.marks.place(node, lat, lng);
    }

    // A mark: <g class="mark CLASS"> with a title, a shape and a label, placed at lat/lng; a click on it
    // goes to `onclick` and not to the map.
    mark(attrs, shape, labelText, title, lat, lng, onclick) {
      const g = M.svg('g', attrs);
      g.classList.add('mark');
      const t = M.svg('title', {});
      t.textContent = title;
      g.append(t, shape);
      if (labelText) {
        const label = M.svg('text', { x: 12, y: 4, class: 'label' });
        label.textContent = labelText;
        g.append(label);
      }
      if (onclick) g.addEventListener('click', (e) => { L.DomEvent.stopPropagation(e); onclick(e); });
      this.place(g, lat, lng);
      return g;
    }

    contains(lat, lng) {
      return this.map.getBounds().contains([lat, lng]);
    }

    panTo(lat, lng) {
      this.map.panTo([lat, lng]);
    }

    // Marks outside the view shown as arrows on the map's edge, pointing towards them:
    // items = [{id, lat, lng, text, className, title, onclick}].
    edges(items) {
      this.edgeItems = items;
      this.drawEdges();
    }

    drawEdges() {
      const box = this.edgeBox;
      const size = this.map.getSize();
      const seen = new Set();
      const placed = []; // arrows already on the edge: a later one that would cover one moves along
      for (const item of this.edgeItems) {
        const p = this.map.latLngToContainerPoint([item.lat, item.lng]);
        const inside = p.x >= 0 && p.y >= 0 && p.x <= size.x && p.y <= size.y;
        if (inside) continue;
        const key = String(item.id);
        seen.add(key);
        let node = box.querySelector('[data-edge-id="' + key + '"]');
        if (!node) {
          node = M.el('button', { type: 'button', class: 'edge-mark', 'data-edge-id': key }, [M.el('span', { class: 'edge-arrow' }, '➤'), M.el('span', { class: 'edge-text' })]);
          L.DomEvent.disableClickPropagation(node);
          node.addEventListener('click', () => { const it = this.edgeItems.find((i) => String(i.id) === node.dataset.edgeId); if (it && it.onclick) it.onclick(); });
          box.append(node);
        }
        node.className = 'edge-mark ' + (item.className || '');
        node.title = item.title || '';
        node.querySelector('.edge-text').textContent = item.text;
        const cx = size.x / 2, cy = size.y / 2;
        const angle = Math.atan2(p.y - cy, p.x - cx);
        // Clamped so the whole arrow stays inside the map.
        const hw = Math.max(EDGE_MARGIN, node.offsetWidth / 2 + 2), hh = Math.max(EDGE_MARGIN, node.offsetHeight / 2 + 2);
        let x = Math.min(size.x - hw, Math.max(hw, p.x));
        let y = Math.min(size.y - hh, Math.max(hh, p.y));
        const sideways = x <= hw || x >= size.x - hw;
        for (let tries = 0; tries < 20 && placed.some((o) => Math.abs(o.x - x) < o.hw + hw && Math.abs(o.y - y) < o.hh + hh); tries++) {
          if (sideways) y = y + 2 * hh + 2 > size.y - hh ? y - 2 * hh - 2 : y + 2 * hh + 2;
          else x = x + 2 * hw + 2 > size.x - hw ? x - 2 * hw - 2 : x + 2 * hw + 2;
        }
        placed.push({ x, y, hw, hh });
        node.style.left = x + 'px';
        node.style.top = y + 'px';
        node.querySelector('.edge-arrow').style.transform = 'rotate(' + angle.toFixed(3) + 'rad)';
        node.dataset.x = Math.round(x);
        node.dataset.y = Math.round(y);
      }
      for (const node of [...box.children]) if (!seen.has(node.dataset.edgeId)) node.remove();
    }

    // Hides every label whose box overlaps one already shown, in priority order: the groups in
    // `options.labelOrder` first, then the rest; within a group, in document order. Runs once per frame.
    declutter() {
      if (this.decluttering) return;
      this.decluttering = true;
      requestAnimationFrame(() => {
        this.decluttering = false;
        const order = this.options.labelOrder || [];
        const groups = [...order.map((n) => this.groups.get(n)).filter(Boolean), ...[...this.groups.values()].filter((g) => !order.includes(g.id.slice(4)))];
        const kept = [];
        for (const g of groups) {
          const labels = [...g.querySelectorAll('text.label')];
          // A selected mark's label goes first.
          labels.sort((a, b) => Number(b.closest('.selected') !== null) - Number(a.closest('.selected') !== null));
          for (const label of labels) {
            label.classList.remove('label-off');
            const r = label.getBoundingClientRect();
            if (!r.width) continue;
            const hit = kept.some((k) => r.left < k.right && r.right > k.left && r.top < k.bottom && r.bottom > k.top);
            if (hit) label.classList.add('label-off');
            else kept.push(r);
          }
        }
      });
    }
  }

  // Creates the map in `el`: options {layers: [names], labelOrder: [names], onClick(lat, lng), view}.
  M.createMap = function (el, options) {
    return new MapView(el, options).start(options.view || {});
  };
  M.escapeHtml = function (text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  };
})();
