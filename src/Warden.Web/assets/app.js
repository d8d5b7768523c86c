// Warden dashboard: plain JS, no framework, no build step. Every value from the server is inserted as text
// (never as HTML), so nothing an agent puts in its arguments can run in an approver's browser.
'use strict';

const S = {
  me: null, csrf: null, csrfHeader: 'X-Warden-CSRF',
  pending: new Map(),          // id -> approval, pending only
  decided: new Set(),          // ids the stream reported no longer pending
  approvalsAvailable: true,
  stream: null,
  list: null,                  // the pending list on screen, when it is
  detail: null,                // the approval detail on screen: {id, update(a)}
  cleanup: [],
  perf: { renderMs: null, filterMs: null, rows: 0 },
};
window.wardenPerf = S.perf;

// ---------- small helpers ----------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}
// The API answers in snake_case or camelCase depending on the endpoint: accept both.
function pick(o, snake) {
  if (o == null) return undefined;
  if (snake in o) return o[snake];
  const camel = snake.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  return o[camel];
}
function say(text) { const s = document.getElementById('status'); s.textContent = ''; setTimeout(() => { s.textContent = text; }, 30); }
function isOperator() { return S.me && S.me.kind === 'operator'; }
function isApprover() { return S.me && S.me.kind === 'approver'; }
function fmtDuration(ms) {
  const neg = ms < 0; ms = Math.abs(ms);
  const s = Math.floor(ms / 1000), m = Math.floor(s / 60), hr = Math.floor(m / 60), d = Math.floor(hr / 24);
  const out = d > 0 ? `${d}d ${hr % 24}h` : hr > 0 ? `${hr}h ${m % 60}m` : m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
  return neg ? '-' + out : out;
}
function fmtTime(t) { if (!t) return ''; const d = new Date(t); return isNaN(d) ? String(t) : d.toLocaleString(); }
function badge(text) { return h('span', { class: 'badge ' + String(text || '').toLowerCase(), text: text || '' }); }
function notice(text, kind) { return h('div', { class: 'notice' + (kind ? ' ' + kind : ''), role: kind === 'error' ? 'alert' : 'status', text }); }
function field(label, input) {
  const id = input.id || ('f-' + Math.random().toString(36).slice(2));
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || ('HTTP ' + status));
    this.status = status; this.body = body;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && S.csrf) headers[S.csrfHeader] = S.csrf;
  const opts = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) { headers['Content-Type'] = 'application/json'; opts.body = JSON.stringify(body); }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = { message: text }; } }
  if (r.status === 401 && !path.startsWith('/ui/')) {
    S.me = null;
    showLogin('Your session ended. Sign in again.');
    throw new ApiError(401, data);
  }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// ---------- session ----------
async function boot() {
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', route);
  const s = await api('GET', '/ui/session');
  S.csrf = s.csrf; S.csrfHeader = s.csrf_header || S.csrfHeader;
  if (s.authenticated && s.via === 'cookie') { signedIn(s); } else { showLogin(); }
}

function showLogin(message) {
  teardown();
  stopStream();
  document.getElementById('top').hidden = true;
  document.getElementById('banners').replaceChildren();
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': 'token-help' });
  const err = h('div', { id: 'login-error', role: 'alert' });
  if (message) err.append(notice(message, 'error'));
  const form = h('form', { 'aria-labelledby': 'login-title', onsubmit: async (e) => {
    e.preventDefault();
    err.replaceChildren();
    try {
      const fresh = await api('GET', '/ui/session');
      S.csrf = fresh.csrf;
      const s = await api('POST', '/ui/login', { token: input.value.trim() });
      input.value = '';
      signedIn(s);
    } catch (ex) {
      err.replaceChildren(notice(ex.status === 403 ? (ex.message || 'This token may not sign in.') : ex.status === 401 ? 'Unknown or revoked token.' : ex.message, 'error'));
      input.focus();
    }
  } },
    h('label', { for: 'token', text: 'Operator or approver token' }),
    input,
    h('p', { id: 'token-help', class: 'muted', text: 'The same token the CLI uses (wdn_op_… or wdn_apr_…). Agent tokens cannot sign in.' }),
    h('button', { type: 'submit', text: 'Sign in' }),
    err);
  document.getElementById('main').replaceChildren(h('section', { class: 'login' }, h('h1', { id: 'login-title', text: 'Sign in to Warden' }), form));
  input.focus();
}

function signedIn(s) {
  S.me = { kind: s.kind, name: s.name, groups: s.groups || [] };
  S.csrf = s.csrf;
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = `${s.name} (${s.kind})`;
  for (const li of document.querySelectorAll('[data-role="operator"]')) li.hidden = !isOperator();
  startStream();
  if (isOperator()) startBanners();
  if (!location.hash || location.hash === '#' || location.hash === '#/login') location.hash = '#/approvals';
  else route();
}

async function logout() {
  try { await api('POST', '/ui/logout'); } catch { /* the cookie may be gone already */ }
  S.me = null; S.pending.clear();
  const s = await api('GET', '/ui/session');
  S.csrf = s.csrf;
  showLogin('Signed out.');
}

// ---------- routing ----------
function teardown() {
  for (const f of S.cleanup.splice(0)) { try { f(); } catch { /* ignore */ } }
  S.list = null; S.detail = null;
}

function route() {
  if (!S.me) return;
  teardown();
  const hash = location.hash.replace(/^#/, '') || '/approvals';
  const [path, query] = hash.split('?');
  const parts = path.split('/').filter(Boolean);
  const params = new URLSearchParams(query || '');
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === parts[0]) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  let view;
  if (parts[0] === 'approvals' && parts[1]) view = approvalDetail(main, decodeURIComponent(parts[1]));
  else if (parts[0] === 'agents') view = agentsView(main);
  else if (parts[0] === 'calls') view = callsView(main);
  else if (parts[0] === 'audit' && parts[1]) view = auditRecordView(main, parts[1]);
  else if (parts[0] === 'audit') view = auditView(main, params);
  else view = approvalsView(main);
  Promise.resolve(view).catch(ex => main.append(notice(ex.message, 'error')));
  const h1 = main.querySelector('h1');
  if (h1) { h1.tabIndex = -1; }
}

function every(ms, f) {
  const id = setInterval(f, ms);
  S.cleanup.push(() => clearInterval(id));
}

// ---------- approvals: live stream ----------
async function loadPending() {
  try {
    const data = await api('GET', '/api/v1/approvals?state=pending&limit=10000');
    S.pending.clear();
    for (const a of (data.approvals || [])) {
      // An approval the stream already reported decided stays decided, however stale this list is.
      if (pick(a, 'state') === 'pending' && !S.decided.has(a.id)) S.pending.set(a.id, a);
    }
    S.approvalsAvailable = true;
  } catch (ex) {
    if (ex.status === 404) S.approvalsAvailable = false; else throw ex;
  }
  updateCount();
  if (S.list) S.list.reset();
}

function startStream() {
  stopStream();
  const es = new EventSource('/api/v1/approvals/stream', { withCredentials: true });
  es.addEventListener('approval', (e) => {
    let a; try { a = JSON.parse(e.data); } catch { return; }
    onApproval(a);
  });
  // On every (re)connection events may have been missed: reload the list.
  es.addEventListener('open', () => { loadPending().catch(() => {}); });
  es.addEventListener('error', () => {
    if (es.readyState !== EventSource.CLOSED || S.stream !== es) return;
    // The browser gave up (an HTTP error, e.g. the session ended): find out why, and try again later.
    loadPending().catch(() => {});
    S.streamRetry = setTimeout(() => { if (S.me && S.stream === es) startStream(); }, 5000);
  });
  S.stream = es;
}
function stopStream() {
  if (S.streamRetry) { clearTimeout(S.streamRetry); S.streamRetry = null; }
  if (S.stream) { S.stream.close(); S.stream = null; }
}

function onApproval(a) {
  const id = a.id;
  if (pick(a, 'state') === 'pending') {
    // Decided is final: a late copy of an earlier revision must not bring the row back.
    if (S.decided.has(id)) return;
    const isNew = !S.pending.has(id);
    S.pending.set(id, a);
    if (S.list) S.list.upsert(a);
    if (isNew) say(`New approval waiting: ${pick(a, 'display_name') || a.tool} by ${a.agent}`);
  } else {
    S.decided.add(id);
    S.pending.delete(id);
    if (S.list) S.list.remove(id);
  }
  if (S.detail && S.detail.id === id) S.detail.update(a);
  updateCount();
}
function updateCount() { document.getElementById('pending-count').textContent = String(S.pending.size); }

// ---------- approvals: the pending list ----------
function createdMs(a) { return Date.parse(pick(a, 'created_at')) || 0; }
function expiresMs(a) { return Date.parse(pick(a, 'expires_at')) || 0; }

class PendingList {
  constructor(table, tbody, empty) {
    this.table = table; this.tbody = tbody; this.empty = empty;
    this.rows = new Map(); this.filter = '';
  }
  row(a) {
    const name = pick(a, 'display_name') || ((a.server ? a.server + '__' : '') + a.tool);
    const link = h('a', { href: '#/approvals/' + encodeURIComponent(a.id), text: name });
    const age = h('td', { class: 'num' }), left = h('td', { class: 'num' });
    const rule = pick(a, 'rule') || '';
    const tr = h('tr', { 'data-id': a.id },
      h('td', {}, link, pick(a, 'two_person') ? h('span', { class: 'muted', text: ' (two-person)' }) : null),
      h('td', { text: a.agent || '' }),
      h('td', { class: 'mono', text: a.session || '—' }),
      h('td', { text: rule }),
      age, left);
    const search = [name, a.agent, a.session, rule, a.server, a.tool, pick(a, 'reason'), JSON.stringify(a.arguments ?? null)].join(' ').toLowerCase();
    return { tr, age, left, search, created: createdMs(a), expires: expiresMs(a) };
  }
  reset() {
    const t0 = performance.now();
    this.rows.clear();
    const items = [...S.pending.values()].sort((x, y) => createdMs(y) - createdMs(x));
    const frag = document.createDocumentFragment();
    for (const a of items) { const r = this.row(a); this.rows.set(a.id, r); frag.append(r.tr); }
    this.tbody.replaceChildren(frag);
    this.tick();
    this.applyFilter(this.filter);
    S.perf.renderMs = performance.now() - t0; S.perf.rows = this.rows.size;
  }
  upsert(a) {
    const old = this.rows.get(a.id);
    const r = this.row(a);
    this.rows.set(a.id, r);
    if (old) old.tr.replaceWith(r.tr); else this.tbody.prepend(r.tr);
    this.tickRow(r, Date.now());
    r.tr.hidden = this.filter !== '' && !r.search.includes(this.filter);
    this.updateEmpty();
  }
  remove(id) {
    const r = this.rows.get(id);
    if (r) { r.tr.remove(); this.rows.delete(id); }
    this.updateEmpty();
  }
  applyFilter(q) {
    const t0 = performance.now();
    this.filter = q.trim().toLowerCase();
    let shown = 0;
    for (const r of this.rows.values()) {
      const hide = this.filter !== '' && !r.search.includes(this.filter);
      if (r.tr.hidden !== hide) r.tr.hidden = hide;
      if (!hide) shown++;
    }
    this.shown = shown;
    this.updateEmpty();
    S.perf.filterMs = performance.now() - t0;
    return shown;
  }
  tickRow(r, now) {
    const age = fmtDuration(now - r.created);
    if (r.age.textContent !== age) r.age.textContent = age;
    const ms = r.expires - now;
    const left = r.expires ? (ms <= 0 ? 'expired' : fmtDuration(ms)) : '—';
    if (r.left.textContent !== left) r.left.textContent = left;
    const urgent = r.expires && ms < 60000;
    if (r.left.classList.contains('urgent') !== !!urgent) r.left.classList.toggle('urgent', !!urgent);
  }
  tick() {
    const t0 = performance.now(), now = Date.now();
    for (const r of this.rows.values()) if (!r.tr.hidden) this.tickRow(r, now);
    S.perf.tickMs = performance.now() - t0;
  }
  updateEmpty() {
    // The first visible row is found at once in the usual case; no scan of every row per event.
    const shown = this.tbody.querySelector('tr:not([hidden])') !== null;
    this.empty.hidden = shown;
    this.empty.textContent = this.rows.size === 0 ? 'Nothing is waiting for approval.' : 'No pending approval matches the filter.';
    this.table.hidden = !shown;
  }
}

function approvalsView(main) {
  const filter = h('input', { type: 'search', id: 'approval-filter', placeholder: 'agent, tool, rule, session, argument text…', autocomplete: 'off' });
  const tbody = h('tbody', { id: 'pending-rows' });
  const table = h('table', { id: 'pending-table', 'aria-describedby': 'pending-help' },
    h('caption', { class: 'visually-hidden', text: 'Calls waiting for approval, newest first' }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: 'Tool' }), h('th', { scope: 'col', text: 'Agent' }), h('th', { scope: 'col', text: 'Session' }),
      h('th', { scope: 'col', text: 'Rule' }), h('th', { scope: 'col', class: 'num', text: 'Age' }), h('th', { scope: 'col', class: 'num', text: 'Time left' }))),
    tbody);
  const empty = h('p', { class: 'muted', id: 'pending-empty' });
  main.append(...[
    h('h1', { text: 'Pending approvals' }),
    h('p', { id: 'pending-help', class: 'muted', text: 'Calls held until a person decides. The list updates live; open a call to see its arguments and decide.' }),
    S.approvalsAvailable ? null : notice('This gateway has no approvals API yet.', 'error'),
    h('div', { class: 'toolbar' }, field('Filter', filter)),
    empty, table].filter(Boolean));
  const list = new PendingList(table, tbody, empty);
  S.list = list;
  list.reset();
  filter.addEventListener('input', () => list.applyFilter(filter.value));
  every(1000, () => list.tick());

  // Remembered approvals: what runs without asking, until when, and a way to end it early.
  const remembered = h('section', { 'aria-labelledby': 'h-remembered', id: 'remembered' }, h('h2', { id: 'h-remembered', text: 'Remembered approvals' }));
  const remResult = h('div', { 'aria-live': 'polite' });
  main.append(remembered, remResult);
  async function loadRemembered() {
    let data;
    try { data = await api('GET', '/api/v1/approvals/remembered'); } catch (ex) { if (ex.status === 404) { remembered.hidden = true; return; } throw ex; }
    const grants = data.remembered || [];
    const title = remembered.firstChild;
    if (!grants.length) { remembered.replaceChildren(title, h('p', { class: 'muted', id: 'remembered-empty', text: 'None: every held call asks.' })); return; }
    remembered.replaceChildren(title, h('table', { id: 'remembered-table' },
      h('thead', {}, h('tr', {}, ['Tool', 'Agent', 'Arguments', 'Approved by', 'Until', ''].map(t => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, grants.map(g => h('tr', { 'data-id': g.id },
        h('td', { text: `${g.server}__${g.tool}` }), h('td', { text: g.agent }),
        h('td', { class: 'mono' }, foldText(JSON.stringify(g.arguments ?? null))),
        h('td', { text: g.by }), h('td', { text: fmtTime(g.until) }),
        h('td', {}, h('button', { type: 'button', class: 'secondary', 'aria-label': `Forget the remembered approval of ${g.server}__${g.tool} for ${g.agent}`, onclick: async () => {
          try { await api('DELETE', '/api/v1/approvals/remembered/' + encodeURIComponent(g.id)); remResult.replaceChildren(notice('Forgotten: the next such call asks again.', 'ok')); }
          catch (ex) { remResult.replaceChildren(notice(`Not forgotten: ${ex.message}`, 'error')); }
          loadRemembered().catch(() => {});
        } }, 'Forget')))))));
  }
  loadRemembered().catch(() => {});
  every(10000, () => { if (!remembered.contains(document.activeElement)) loadRemembered().catch(() => {}); });
}

// ---------- approvals: detail ----------
function jsonNode(value, depth) {
  // Pretty-printed JSON as DOM. Long strings are folded behind a "show all" toggle: never cut silently.
  const FOLD = 160;
  const pad = '  '.repeat(depth);
  if (value === null) return h('span', { class: 'n', text: 'null' });
  if (typeof value === 'string') {
    const quoted = JSON.stringify(value);
    if (quoted.length <= FOLD) return h('span', { class: 's', text: quoted });
    return h('details', {},
      h('summary', { text: `${quoted.slice(0, FOLD)}… (${value.length} characters; show all)` }),
      h('span', { class: 's', text: quoted }));
  }
  if (typeof value === 'number' || typeof value === 'boolean') return h('span', { class: 'n', text: JSON.stringify(value) });
  if (Array.isArray(value)) {
    if (value.length === 0) return document.createTextNode('[]');
    const frag = h('span', {}, '[\n');
    value.forEach((v, i) => { frag.append(pad + '  ', jsonNode(v, depth + 1), i < value.length - 1 ? ',\n' : '\n'); });
    frag.append(pad + ']');
    return frag;
  }
  const keys = Object.keys(value);
  if (keys.length === 0) return document.createTextNode('{}');
  const frag = h('span', {}, '{\n');
  keys.forEach((k, i) => {
    frag.append(pad + '  ', h('span', { class: 'k', text: JSON.stringify(k) }), ': ', jsonNode(value[k], depth + 1), i < keys.length - 1 ? ',\n' : '\n');
  });
  frag.append(pad + '}');
  return frag;
}
function jsonBlock(value, label) { return h('pre', { class: 'json', 'aria-label': label, tabindex: '0' }, jsonNode(value, 0)); }

function flatten(value, path, out) {
  if (value !== null && typeof value === 'object') {
    const keys = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
    if (keys.length === 0) out.set(path || '(root)', JSON.stringify(value));
    for (const k of keys) flatten(value[k], path ? `${path}${Array.isArray(value) ? `[${k}]` : '.' + k}` : String(k), out);
  } else out.set(path || '(root)', JSON.stringify(value));
  return out;
}
function diffArgs(before, after) {
  const a = flatten(before, '', new Map()), b = flatten(after, '', new Map());
  const rows = [];
  for (const [k, v] of b) { if (!a.has(k)) rows.push({ path: k, kind: 'added', before: '', after: v }); else if (a.get(k) !== v) rows.push({ path: k, kind: 'changed', before: a.get(k), after: v }); }
  for (const [k, v] of a) if (!b.has(k)) rows.push({ path: k, kind: 'removed', before: v, after: '' });
  return rows;
}
function foldText(text) {
  if (text.length <= 200) return document.createTextNode(text);
  return h('details', {}, h('summary', { text: `${text.slice(0, 200)}… (${text.length} characters; show all)` }), text);
}

async function approvalDetail(main, id) {
  let a;
  try { a = await api('GET', '/api/v1/approvals/' + encodeURIComponent(id)); }
  catch (ex) { main.append(h('h1', { text: 'Approval' }), notice(ex.status === 404 ? 'No such approval.' : ex.message, 'error'), h('a', { href: '#/approvals', text: 'Back to pending approvals' })); return; }

  const stateBox = h('p', { id: 'approval-state' });
  const leftCell = h('dd', { id: 'time-left' });
  const approvalsBox = h('div', { id: 'two-person' });
  const result = h('div', { id: 'decision-result', 'aria-live': 'polite' });
  const decideBox = h('div', {});
  const name = pick(a, 'display_name') || ((a.server ? a.server + '__' : '') + a.tool);

  function renderState(x) {
    const st = pick(x, 'state');
    stateBox.replaceChildren('State: ', badge(st));
    const by = pick(x, 'decided_by');
    if (by) stateBox.append(` by ${by}`, pick(x, 'decided_at') ? ` at ${fmtTime(pick(x, 'decided_at'))}` : '', pick(x, 'decision_reason') ? ` — ${pick(x, 'decision_reason')}` : '');
    const rem = pick(x, 'remember');
    if (rem) stateBox.append(h('span', { class: 'muted', text: ` (remembered until ${fmtTime(rem.until)})` }));
    approvalsBox.replaceChildren();
    const groups = pick(x, 'approver_groups') || [];
    if (groups.length) approvalsBox.append(h('p', {}, 'Who may decide: ', groups.join(', ')));
    if (pick(x, 'two_person')) {
      const got = pick(x, 'approvals') || [];
      approvalsBox.append(h('p', { class: 'notice' }, h('strong', { text: 'Two-person rule: ' }),
        `this call runs only after two different approvers approve it. Approvals so far: ${got.length} of 2`,
        got.length ? ` (${got.map(g => `${g.by} at ${fmtTime(g.at)}`).join('; ')})` : '', '.'));
    }
    decideBox.hidden = st !== 'pending';
  }
  function tickLeft() {
    const ms = expiresMs(a) - Date.now();
    leftCell.textContent = expiresMs(a) ? (ms <= 0 ? 'expired' : fmtDuration(ms)) : '—';
    leftCell.classList.toggle('urgent', ms < 60000);
  }

  main.append(
    h('p', {}, h('a', { href: '#/approvals', text: '← Pending approvals' })),
    h('h1', {}, `${name} `, h('span', { class: 'muted', text: `by ${a.agent}` })),
    stateBox,
    h('div', { class: 'cols' },
      h('section', { class: 'panel', 'aria-labelledby': 'h-call' }, h('h2', { id: 'h-call', text: 'The call' }),
        h('dl', { class: 'grid' },
          h('dt', { text: 'Agent' }), h('dd', { text: a.agent }),
          h('dt', { text: 'Session' }), h('dd', { class: 'mono', text: a.session || '—' }),
          h('dt', { text: 'Server' }), h('dd', { text: a.server || '' }),
          h('dt', { text: 'Tool' }), h('dd', { text: a.tool || '' }),
          h('dt', { text: 'Mode' }), h('dd', { text: pick(a, 'mode') || '' }),
          h('dt', { text: 'Waiting since' }), h('dd', { text: fmtTime(pick(a, 'created_at')) }),
          h('dt', { text: 'Time left' }), leftCell,
          h('dt', { text: 'Digest' }), h('dd', { class: 'mono', text: a.digest || '' }))),
      h('section', { class: 'panel', 'aria-labelledby': 'h-rule' }, h('h2', { id: 'h-rule', text: 'Why it waits' }),
        h('dl', { class: 'grid' },
          h('dt', { text: 'Rule' }), h('dd', { id: 'approval-rule', text: pick(a, 'rule') || '' }),
          h('dt', { text: 'Reason' }), h('dd', { text: pick(a, 'reason') || '' }),
          h('dt', { text: 'Policy version' }), h('dd', { class: 'mono', text: pick(a, 'policy_version') || '' })),
        approvalsBox)),
    h('section', { 'aria-labelledby': 'h-args' }, h('h2', { id: 'h-args', text: 'Arguments (exactly what will run)' }), jsonBlock(a.arguments ?? {}, 'Arguments')));

  const findings = pick(a, 'findings') || [];
  if (findings.length) {
    main.append(h('section', { 'aria-labelledby': 'h-find' }, h('h2', { id: 'h-find', text: 'Data guard findings' }),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Kind' }), h('th', { scope: 'col', text: 'Where' }), h('th', { scope: 'col', class: 'num', text: 'Confidence' }))),
        h('tbody', {}, findings.map(f => h('tr', {}, h('td', { text: f.kind }), h('td', { class: 'mono', text: f.location || '' }), h('td', { class: 'num', text: f.confidence != null ? Math.round(f.confidence * 100) + '%' : '' })))))));
  }

  // The decision.
  const reason = h('textarea', { id: 'decision-reason', rows: '2', cols: '60' });
  const remember = h('select', { id: 'remember-for' },
    h('option', { value: '15m', text: '15 minutes' }), h('option', { value: '1h', text: '1 hour', selected: true }),
    h('option', { value: '8h', text: '8 hours' }), h('option', { value: '24h', text: '24 hours' }), h('option', { value: '7d', text: '7 days' }));
  async function decide(decision, rememberFor) {
    if (decision === 'deny' && !reason.value.trim()) { result.replaceChildren(notice('A denial needs a reason: the agent receives it.', 'error')); reason.focus(); return; }
    for (const b of decideBox.querySelectorAll('button')) b.disabled = true;
    try {
      const body = { decision, reason: reason.value.trim() || undefined, digest: a.digest };
      if (rememberFor) body.rememberFor = rememberFor;
      const x = await api('POST', `/api/v1/approvals/${encodeURIComponent(a.id)}/decision`, body);
      onApproval(x); renderState(x);
      const st = pick(x, 'state');
      result.replaceChildren(notice(st === 'pending' ? 'Your approval is recorded; a second approver must approve too.' : `Decision recorded: ${st}.`, 'ok'));
    } catch (ex) {
      result.replaceChildren(notice(`Not recorded: ${ex.message}`, 'error'));
    } finally {
      for (const b of decideBox.querySelectorAll('button')) b.disabled = false;
    }
  }
  if (isApprover()) {
    decideBox.append(h('section', { class: 'panel decide', 'aria-labelledby': 'h-decide' },
      h('h2', { id: 'h-decide', text: 'Decide' }),
      field('Reason (required to deny; the agent receives it)', reason),
      h('div', { class: 'row' },
        h('button', { type: 'button', class: 'ok', id: 'approve', onclick: () => decide('approve') }, 'Approve this call'),
        h('button', { type: 'button', class: 'danger', id: 'deny', onclick: () => decide('deny') }, 'Deny')),
      h('div', { class: 'row' },
        field('Remember for', remember),
        h('button', { type: 'button', class: 'secondary', id: 'approve-remember', onclick: () => decide('approve', remember.value) }, 'Approve and remember'),
        h('span', { class: 'muted', text: 'allows the same tool with the same arguments for this agent until then' }))));
  } else {
    decideBox.append(notice('Only approvers decide held calls; you are signed in as an operator.'));
  }
  main.append(decideBox, result);
  renderState(a); tickLeft();
  every(1000, tickLeft);
  S.detail = {
    id: a.id,
    update: (x) => {
      // Changes may arrive out of order (a list read racing the stream): show only what is newer.
      if ((x.revision ?? 0) < (a.revision ?? 0)) return;
      a = Object.assign(a, x); renderState(x);
    },
  };

  // Context: the differences from the last approved call of the same tool, and the agent's recent calls.
  const diffBox = h('section', { 'aria-labelledby': 'h-diff' }, h('h2', { id: 'h-diff', text: 'Compared with the last approved call of this tool' }), h('p', { class: 'muted', text: 'Loading…' }));
  const recentBox = h('section', { 'aria-labelledby': 'h-recent' }, h('h2', { id: 'h-recent', text: `Recent calls by ${a.agent}` }), h('p', { class: 'muted', text: 'Loading…' }));
  main.append(diffBox, recentBox);
  loadDiff(a, diffBox).catch(ex => diffBox.replaceChildren(diffBox.firstChild, notice(ex.message, 'error')));
  loadRecent(a, recentBox).catch(ex => recentBox.replaceChildren(recentBox.firstChild, notice(ex.message, 'error')));
}

async function loadDiff(a, box) {
  let last = null;
  for (const st of ['executed', 'approved']) {
    const q = new URLSearchParams({ state: st, agent: a.agent, tool: a.tool, limit: '5' });
    const data = await api('GET', '/api/v1/approvals?' + q);
    for (const x of (data.approvals || [])) {
      if (x.id === a.id || (x.server && a.server && x.server !== a.server)) continue;
      const t = Date.parse(pick(x, 'decided_at') || pick(x, 'created_at')) || 0;
      if (!last || t > last.t) last = { x, t };
    }
  }
  const title = box.firstChild;
  if (!last) { box.replaceChildren(title, h('p', { class: 'muted', text: `No earlier approved call of ${a.tool} by ${a.agent}.` })); return; }
  const rows = diffArgs(last.x.arguments ?? {}, a.arguments ?? {});
  const intro = h('p', {}, 'Last approved ', h('a', { href: '#/approvals/' + encodeURIComponent(last.x.id), text: fmtTime(pick(last.x, 'decided_at') || pick(last.x, 'created_at')) }),
    pick(last.x, 'decided_by') ? ` by ${pick(last.x, 'decided_by')}` : '', '.');
  if (rows.length === 0) { box.replaceChildren(title, intro, h('p', { id: 'diff-none', text: 'The arguments are identical.' })); return; }
  box.replaceChildren(title, intro, h('table', { id: 'diff-table' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Argument' }), h('th', { scope: 'col', text: 'Change' }), h('th', { scope: 'col', text: 'Last approved' }), h('th', { scope: 'col', text: 'Now' }))),
    h('tbody', {}, rows.map(r => h('tr', { class: 'diff-' + r.kind }, h('td', { class: 'mono', text: r.path }), h('td', { text: r.kind }), h('td', { class: 'mono' }, foldText(r.before)), h('td', { class: 'mono' }, foldText(r.after)))))));
}

async function loadRecent(a, box) {
  const q = new URLSearchParams({ agent: a.agent, kind: 'decision', newest: 'true', limit: '15' });
  const title = box.firstChild;
  let data;
  try { data = await api('GET', '/api/v1/audit?' + q); }
  catch (ex) { box.replaceChildren(title, notice(ex.status === 403 ? 'Your account may not read the audit log.' : ex.message, 'error')); return; }
  const events = (data.events || []).slice().sort((x, y) => y.seq - x.seq);
  if (!events.length) { box.replaceChildren(title, h('p', { class: 'muted', text: 'No recorded calls.' })); return; }
  box.replaceChildren(title, auditTable(events));
}

// ---------- agents ----------
async function agentsView(main) {
  const result = h('div', { id: 'agent-result', 'aria-live': 'polite' });
  const holder = h('div', {});
  main.append(h('h1', { text: 'Agents' }), result, holder);
  async function load() {
    const agents = await api('GET', '/api/v1/agents');
    const rows = agents.map(p => {
      const st = p.status || {};
      const state = st.state || (pick(p, 'revoked_at') ? 'revoked' : 'active');
      const reasonInput = h('input', { type: 'text', id: `reason-${p.name}`, autocomplete: 'off', placeholder: 'reason' });
      const label = h('label', { for: `reason-${p.name}`, class: 'visually-hidden', text: `Reason to ${state === 'active' ? 'stop' : 'resume'} ${p.name}` });
      const act = state === 'active'
        ? h('button', { type: 'button', class: 'danger', 'data-action': 'stop', 'data-agent': p.name, onclick: () => stop(p.name, reasonInput) }, `Stop ${p.name}`)
        : h('button', { type: 'button', class: 'ok', 'data-action': 'resume', 'data-agent': p.name, onclick: () => resume(p.name, reasonInput) }, `Resume ${p.name}`);
      const limits = (st.limits || []).map(l => {
        const pct = l.capacity ? Math.min(100, Math.round(100 * l.used / l.capacity)) : 0;
        return h('li', {}, h('span', { class: 'meter', role: 'img', 'aria-label': `${pct}% used` }, h('span', { style: null })), ` ${l.id}: ${l.used}/${l.capacity} `, h('span', { class: 'muted', text: l.describe || '' }));
      });
      // Inline styles are blocked by the content security policy: size the meter through the DOM.
      limits.forEach((li, i) => { const l = st.limits[i]; li.querySelector('.meter > span').style.width = (l.capacity ? Math.min(100, 100 * l.used / l.capacity) : 0) + '%'; });
      const denials = st.recentDenials || st.recent_denials || [];
      const stopInfo = pick(st, 'stopped_by') ? h('div', { class: 'muted', text: `by ${pick(st, 'stopped_by')}: ${pick(st, 'stop_reason') || ''}` }) : null;
      return h('tr', { 'data-agent': p.name },
        h('th', { scope: 'row', text: p.name }),
        h('td', {}, badge(state), stopInfo),
        h('td', { class: 'num', text: String(st.sessions ?? 0) }),
        h('td', {}, limits.length ? h('ul', { class: 'plain' }, limits) : h('span', { class: 'muted', text: 'none' })),
        h('td', {}, denials.length
          ? h('details', {}, h('summary', { text: `${denials.length} recent` }), h('ul', { class: 'plain' }, denials.map(d => h('li', {}, `${fmtTime(d.at)} ${d.tool} — ${d.rule}: `, foldText(d.reason || '')))))
          : h('span', { class: 'muted', text: 'none' })),
        h('td', {}, h('div', { class: 'agent-actions' }, label, reasonInput, act)));
    });
    holder.replaceChildren(h('table', { id: 'agents-table' },
      h('thead', {}, h('tr', {}, ['Agent', 'State', 'Sessions', 'Limits', 'Recent denials', 'Action'].map(t => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, rows)));
  }
  async function stop(name, input) {
    const reason = input.value.trim();
    if (!reason) { result.replaceChildren(notice(`Give a reason to stop ${name}: the agent is told.`, 'error')); input.focus(); return; }
    try {
      const ack = await api('POST', '/api/v1/stops', { scope: 'agent', target: name, reason });
      result.replaceChildren(notice(ack.message || `${name} stopped.`, 'ok'));
    } catch (ex) { result.replaceChildren(notice(`Not stopped: ${ex.message}`, 'error')); }
    await load(); refreshBanners();
  }
  async function resume(name, input) {
    const reason = input.value.trim();
    if (!reason) { result.replaceChildren(notice(`Give a reason to resume ${name}: it is recorded.`, 'error')); input.focus(); return; }
    try {
      await api('POST', '/api/v1/stops/resume', { scope: 'agent', target: name, reason });
      result.replaceChildren(notice(`${name} resumed.`, 'ok'));
    } catch (ex) { result.replaceChildren(notice(`Not resumed: ${ex.message}`, 'error')); }
    await load(); refreshBanners();
  }
  await load();
  // Refresh, but never under someone typing a reason.
  every(5000, () => { if (!holder.contains(document.activeElement) || document.activeElement.tagName === 'BUTTON') load().catch(() => {}); });
}

// ---------- breaker banner ----------
let bannerTimer = null;
function startBanners() {
  if (bannerTimer) clearInterval(bannerTimer);
  refreshBanners();
  bannerTimer = setInterval(() => { if (S.me && isOperator()) refreshBanners(); }, 5000);
}
async function refreshBanners() {
  const box = document.getElementById('banners');
  let agents;
  try { agents = await api('GET', '/api/v1/agents'); } catch { return; }
  const paused = agents.filter(p => p.status && p.status.state === 'paused');
  const key = paused.map(p => p.name + '|' + pick(p.status, 'stopped_by')).join(',');
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...paused.map(p => h('div', { class: 'banner', role: 'alert' },
    h('strong', { text: `${p.name} is paused` }), ` by ${pick(p.status, 'stopped_by')}: ${pick(p.status, 'stop_reason') || ''}. An operator must resume it. `,
    h('a', { href: '#/agents', text: 'Go to agents' }))));
}

// ---------- live calls ----------
async function callsView(main) {
  const inflight = h('div', { id: 'calls-inflight' });
  const recent = h('div', { id: 'calls-recent' });
  main.append(h('h1', { text: 'Live calls' }),
    h('section', { 'aria-labelledby': 'h-inflight' }, h('h2', { id: 'h-inflight', text: 'In flight now' }), inflight),
    h('section', { 'aria-labelledby': 'h-decisions' }, h('h2', { id: 'h-decisions', text: 'Latest decisions' }), recent));
  async function load() {
    const data = await api('GET', '/api/v1/calls');
    const calls = data.calls || [];
    inflight.replaceChildren(calls.length
      ? h('table', {}, h('thead', {}, h('tr', {}, ['Tool', 'Agent', 'Session', 'Running for', ''].map(t => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, calls.map(c => h('tr', {}, h('td', { text: c.tool }), h('td', { text: c.agent }), h('td', { class: 'mono', text: c.session }),
          h('td', { class: 'num', text: fmtDuration(c.seconds * 1000) }), h('td', { text: c.cancelling ? 'cancelling' : '' })))))
      : h('p', { class: 'muted', text: `No call is running. ${data.forwarded ?? 0} forwarded since start.` }));
    const audit = await api('GET', '/api/v1/audit?' + new URLSearchParams({ kind: 'decision', newest: 'true', limit: '25' }));
    const events = (audit.events || []).slice().sort((x, y) => y.seq - x.seq);
    recent.replaceChildren(events.length ? auditTable(events) : h('p', { class: 'muted', text: 'No decisions yet.' }));
  }
  await load();
  every(2000, () => load().catch(() => {}));
}

// ---------- audit ----------
function auditTable(events) {
  return h('table', { class: 'audit-table' },
    h('thead', {}, h('tr', {}, ['#', 'Time', 'Kind', 'Agent', 'Tool', 'Effect', 'Rule', 'Outcome'].map(t => h('th', { scope: 'col', text: t })))),
    h('tbody', {}, events.map(e => h('tr', { 'data-seq': e.seq },
      h('td', {}, h('a', { href: '#/audit/' + e.seq, text: String(e.seq), 'aria-label': `Record ${e.seq}` })),
      h('td', { text: fmtTime(e.time) }), h('td', { text: e.kind }), h('td', { text: e.agent || '' }),
      h('td', { text: e.server && e.tool ? `${e.server}__${e.tool}` : (e.tool || '') }),
      h('td', {}, e.effect ? badge(e.effect) : ''), h('td', { text: e.rule || '' }), h('td', { text: e.outcome || '' })))));
}

async function auditView(main, params) {
  const inputs = {
    agent: h('input', { type: 'text', id: 'q-agent', autocomplete: 'off' }),
    tool: h('input', { type: 'text', id: 'q-tool', autocomplete: 'off', placeholder: 'tool name, e.g. post_reply' }),
    effect: h('select', { id: 'q-effect' }, ['', 'allow', 'deny', 'ask', 'shadow', 'error'].map(v => h('option', { value: v, text: v || 'any' }))),
    rule: h('input', { type: 'text', id: 'q-rule', autocomplete: 'off' }),
    kind: h('input', { type: 'text', id: 'q-kind', autocomplete: 'off', placeholder: 'decision, call.*, agent.*' }),
    from: h('input', { type: 'datetime-local', id: 'q-from' }),
    to: h('input', { type: 'datetime-local', id: 'q-to' }),
    text: h('input', { type: 'text', id: 'q-text', autocomplete: 'off' }),
  };
  const labels = { agent: 'Agent', tool: 'Tool', effect: 'Effect', rule: 'Rule', kind: 'Kind', from: 'From', to: 'To', text: 'Text' };
  for (const [k, el] of Object.entries(inputs)) {
    const v = params.get(k);
    if (v == null) continue;
    el.value = (k === 'from' || k === 'to') ? toLocalInput(v) : v;
  }
  const results = h('div', { id: 'audit-results', 'aria-live': 'polite' });
  const form = h('form', { class: 'toolbar', role: 'search', 'aria-label': 'Audit search', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, el] of Object.entries(inputs)) {
      if (!el.value) continue;
      q.set(k, (k === 'from' || k === 'to') ? new Date(el.value).toISOString() : el.value.trim());
    }
    const target = '#/audit' + (q.toString() ? '?' + q : '');
    if (location.hash === target) run(q); else location.hash = target;
  } }, Object.entries(inputs).map(([k, el]) => field(labels[k], el)), h('button', { type: 'submit', text: 'Search' }));
  main.append(h('h1', { text: 'Audit' }), form, results);
  async function run(q) {
    const query = new URLSearchParams(q);
    if (params.get('call')) query.set('call', params.get('call'));
    query.set('newest', 'true'); query.set('limit', '200');
    results.replaceChildren(h('p', { class: 'muted', text: 'Searching…' }));
    try {
      const data = await api('GET', '/api/v1/audit?' + query);
      const events = (data.events || []).slice().sort((x, y) => y.seq - x.seq);
      results.replaceChildren(h('p', { id: 'audit-count', text: `${events.length} record${events.length === 1 ? '' : 's'}${events.length === 200 ? ' (the newest 200)' : ''}; the log holds ${data.head}.` }),
        events.length ? auditTable(events) : h('p', { class: 'muted', text: 'Nothing matches.' }));
    } catch (ex) { results.replaceChildren(notice(ex.message, 'error')); }
  }
  await run(params);
}
function toLocalInput(iso) {
  const d = new Date(iso); if (isNaN(d)) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

async function auditRecordView(main, seqText) {
  const seq = Number.parseInt(seqText, 10);
  if (!Number.isFinite(seq) || seq < 1) { main.append(notice('Not a record number.', 'error')); return; }
  // The record and its neighbours in the chain: after=seq-2 returns seq-1, seq, seq+1.
  const data = await api('GET', '/api/v1/audit?' + new URLSearchParams({ after: String(Math.max(0, seq - 2)), limit: '3' }));
  const events = data.events || [];
  const e = events.find(x => x.seq === seq);
  const prev = events.find(x => x.seq === seq - 1), next = events.find(x => x.seq === seq + 1);
  main.append(h('p', {}, h('a', { href: '#/audit', text: '← Audit search' })), h('h1', { text: `Audit record ${seq}` }));
  if (!e) { main.append(notice(`No record ${seq}; the log holds ${data.head}.`, 'error')); return; }
  const nav = h('nav', { 'aria-label': 'Neighbouring records', class: 'toolbar' },
    prev ? h('a', { href: '#/audit/' + prev.seq, id: 'prev-record', text: `← Previous record (${prev.seq})` }) : h('span', { class: 'muted', text: 'First record' }),
    next ? h('a', { href: '#/audit/' + next.seq, id: 'next-record', text: `Next record (${next.seq}) →` }) : h('span', { class: 'muted', text: 'Newest record' }),
    e.call ? h('a', { href: '#/audit?call=' + encodeURIComponent(e.call), text: 'All records of this call' }) : null);
  const linked = prev ? (prev.hash === e.prev ? 'links to the previous record’s hash' : 'DOES NOT link to the previous record’s hash: run warden audit verify') : '';
  const dl = h('dl', { class: 'grid', id: 'audit-record' });
  for (const k of ['seq', 'time', 'kind', 'actor', 'agent', 'session', 'call', 'server', 'tool', 'effect', 'rule', 'policy', 'outcome', 'dur_us', 'result', 'prev', 'hash']) {
    if (e[k] === undefined || e[k] === null) continue;
    dl.append(h('dt', { text: k }), h('dd', { class: k === 'prev' || k === 'hash' || k === 'call' ? 'mono' : null, text: String(e[k]) }));
  }
  main.append(nav, h('section', { class: 'panel' }, dl, linked ? h('p', { class: prev.hash === e.prev ? 'muted' : 'urgent', text: `prev ${linked}` }) : null));
  for (const k of ['args', 'context', 'detail']) {
    if (!e[k]) continue;
    let v; try { v = JSON.parse(e[k]); } catch { v = e[k]; }
    main.append(h('h2', { text: k === 'args' ? 'Arguments (masked)' : k }), jsonBlock(v, k));
  }
}

boot().catch(ex => { document.getElementById('main').replaceChildren(notice('The dashboard could not start: ' + ex.message, 'error')); });
