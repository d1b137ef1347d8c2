// Shared by every page: the session (token in localStorage, never in a URL), REST calls with
// `Authorization: Bearer`, the websocket client (first frame `auth`, then subscriptions, reconnect with
// backoff) and small DOM helpers. Pages use it as `OneMedi`.
'use strict';
(function () {
  const KEY = 'onemedi.session';

  function session() {
    try {
      const s = JSON.parse(localStorage.getItem(KEY) || 'null');
      return s && typeof s.token === 'string' ? s : null;
    } catch (_) {
      return null;
    }
  }

  function saveSession(s) {
    localStorage.setItem(KEY, JSON.stringify({ token: s.token, user: s.user }));
  }

  function logout() {
    localStorage.removeItem(KEY);
    location.assign('/login?next=' + encodeURIComponent(location.pathname));
  }

  // Only a same-site path may be the target after signing in.
  function safeNext(raw) {
    return typeof raw === 'string' && /^\/[A-Za-z0-9/_-]*$/.test(raw) && !raw.startsWith('//') ? raw : null;
  }

  // The signed-in user if their role is one of `roles`; otherwise off to the login page.
  function requireLogin(roles) {
    const s = session();
    if (!s) {
      location.replace('/login?next=' + encodeURIComponent(location.pathname));
      return null;
    }
    if (roles && !roles.includes(s.user.role)) {
      document.body.textContent = '';
      const p = el('main', {}, [
        el('h1', {}, 'Not for your role'),
        el('p', {}, 'This page is for: ' + roles.join(', ') + '. You are signed in as ' + s.user.name + ' (' + s.user.role + ').'),
        el('button', { type: 'button', id: 'logout', onclick: logout }, 'Sign in as someone else'),
      ]);
      document.body.append(p);
      return null;
    }
    const who = document.getElementById('who');
    if (who) who.textContent = s.user.name + ' · ' + s.user.role;
    const out = document.getElementById('logout');
    if (out) out.addEventListener('click', logout);
    return s;
  }

  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || 'request failed (' + status + ')');
      this.status = status;
      this.code = e.code || 'http_' + status;
      this.details = e.details;
    }
  }

  async function api(path, options) {
    const opts = options || {};
    const headers = { Accept: 'application/json' };
    const s = session();
    if (s) headers.Authorization = 'Bearer ' + s.token;
    let body;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    const res = await fetch(path, { method: opts.method || 'GET', headers, body, cache: 'no-store' });
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (res.status === 401 && s) {
      // The token expired or the account was disabled.
      logout();
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // A websocket session that authenticates with its first frame, follows `topics`, and reconnects.
  // `onOpen` runs after every (re)connection once subscribed: re-read state over REST there, since
  // events sent while disconnected are not replayed. `handlers.token` (a tracking share link's token)
  // replaces the signed-in session; such a session is refused or closed (1008) when the link expires,
  // and then `onUnauthorized` runs instead of a reconnect.
  class Live {
    constructor(handlers) {
      this.handlers = handlers;
      this.topics = new Set();
      this.pending = new Map();
      this.nextRef = 1;
      this.backoff = 500;
      this.ready = false;
      this.open();
    }

    open() {
      const shared = this.handlers.token;
      const s = shared ? { token: shared } : session();
      if (!s) return;
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(proto + '//' + location.host + '/ws');
      this.ws = ws;
      ws.onopen = () => {
        this.command({ type: 'auth', token: s.token }).then(async () => {
          for (const t of this.topics) await this.command({ type: 'subscribe', topic: t }).catch((e) => this.report(e));
          this.ready = true;
          this.backoff = 500;
          this.status(true);
          if (this.handlers.onOpen) this.handlers.onOpen();
        }, (e) => {
          // The token expired or the account was disabled: sign in again.
          if (e.code !== 'unauthorized') this.report(e);
          else if (!shared) logout();
        });
      };
      ws.onmessage = (m) => {
        let frame;
        try { frame = JSON.parse(m.data); } catch (_) { return; }
        if ((frame.type === 'ack' || frame.type === 'error') && this.pending.has(frame.ref)) {
          const p = this.pending.get(frame.ref);
          this.pending.delete(frame.ref);
          if (frame.type === 'ack') p.resolve(frame); else p.reject(frame);
          return;
        }
        if (frame.type === 'event' || frame.type === 'offer') {
          if (this.handlers.onEvent) this.handlers.onEvent(frame.event, frame.topic, frame.type);
        }
      };
      ws.onclose = (e) => {
        this.ready = false;
        this.status(false);
        for (const p of this.pending.values()) p.reject({ code: 'disconnected', message: 'connection lost' });
        this.pending.clear();
        if (e.code === 1008 && shared) {
          if (this.handlers.onUnauthorized) this.handlers.onUnauthorized();
          return;
        }
        if (e.code === 1008 && !session()) return;
        setTimeout(() => this.open(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 10000);
      };
    }

    status(up) {
      const pill = document.getElementById('live');
      if (pill) {
        pill.textContent = up ? 'live' : 'reconnecting…';
        pill.className = 'pill ' + (up ? 'on' : 'off');
      }
    }

    report(e) {
      if (this.handlers.onError) this.handlers.onError(e);
    }

    // Sends a command and resolves with its ack (rejects with the error frame).
    command(frame) {
      return new Promise((resolve, reject) => {
        if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
          reject({ code: 'disconnected', message: 'not connected' });
          return;
        }
        const ref = this.nextRef++;
        this.pending.set(ref, { resolve, reject });
        this.ws.send(JSON.stringify(Object.assign({}, frame, { ref })));
      });
    }

    async follow(topic) {
      this.topics.add(topic);
      if (this.ready) await this.command({ type: 'subscribe', topic });
    }
  }

  // el('div', {class: 'x', onclick: f}, [children or text])
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
      else if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    const list = Array.isArray(children) ? children : children === undefined ? [] : [children];
    for (const c of list) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }

  // m:ss, or h:mm:ss from an hour on; "—" when unknown.
  function clock(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
    const s = Math.max(0, Math.round(seconds));
    const ss = String(s % 60).padStart(2, '0');
    if (s < 3600) return Math.floor(s / 60) + ':' + ss;
    return Math.floor(s / 3600) + ':' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + ':' + ss;
  }

  // Naive UTC timestamps from the API ("2026-11-25T10:00:00.123") → epoch ms.
  function utcMs(text) {
    if (!text) return null;
    const t = /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : text + 'Z';
    const ms = Date.parse(t);
    return isNaN(ms) ? null : ms;
  }

  window.OneMedi = { session, saveSession, logout, safeNext, requireLogin, api, ApiError, Live, el, svg, age, clock, utcMs };
})();
