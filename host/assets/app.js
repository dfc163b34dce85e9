// Integration sources: the admin page (Admin → External References → Sources) and the project
// members' links view. Plain JavaScript, no build step, no external assets; it calls the same
// REST API as everyone else with the bearer token the user pastes once (kept in sessionStorage).
//
// Everything provider-specific (auth types and their fields, settings, key format, URL
// templates) comes from GET /api/v1/providers: nothing here knows a provider by name.

'use strict';

(() => {
  const TOKEN_KEY = 'integration-sources.token';
  const CONTEXT_KEY = 'integration-sources.links-context';
  const PROVIDER_ORDER = ['jira-cloud', 'github', 'azure-devops', 'linear', 'gitlab', 'custom'];

  const S = {
    token: null,
    me: null,
    providers: [],
    projects: [],
    timers: [],
    routed: false,
    // The open view's "has unsaved changes" check (the editor's), and the hash it is at.
    unsaved: null,
    hash: '',
  };

  // ---------------------------------------------------------------------------------------
  // Icons (inline SVG, stroke style)

  const ICONS = {
    wrench: '<path d="M14.7 6.3a1 1 0 0 0 0 1.4l1.6 1.6a1 1 0 0 0 1.4 0l3.77-3.77a6 6 0 0 1-7.94 7.94l-6.91 6.91a2.12 2.12 0 0 1-3-3l6.91-6.91a6 6 0 0 1 7.94-7.94l-3.76 3.76z"/>',
    pencil: '<path d="M17 3a2.83 2.83 0 1 1 4 4L7.5 20.5 2 22l1.5-5.5L17 3z"/>',
    trash: '<path d="M3 6h18"/><path d="M19 6l-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6"/><path d="M10 11v6M14 11v6"/><path d="M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2"/>',
    plus: '<path d="M12 5v14M5 12h14"/>',
    check: '<path d="M22 11.08V12a10 10 0 1 1-5.93-9.14"/><path d="M22 4 12 14.01l-3-3"/>',
    cross: '<circle cx="12" cy="12" r="10"/><path d="m15 9-6 6M9 9l6 6"/>',
    alert: '<circle cx="12" cy="12" r="10"/><path d="M12 8v4M12 16h.01"/>',
    warn: '<path d="M10.29 3.86 1.82 18a2 2 0 0 0 1.71 3h16.94a2 2 0 0 0 1.71-3L13.71 3.86a2 2 0 0 0-3.42 0z"/><path d="M12 9v4M12 17h.01"/>',
    refresh: '<path d="M23 4v6h-6M1 20v-6h6"/><path d="M3.51 9a9 9 0 0 1 14.85-3.36L23 10M1 14l4.64 4.36A9 9 0 0 0 20.49 15"/>',
    link: '<path d="M10 13a5 5 0 0 0 7.54.54l3-3a5 5 0 0 0-7.07-7.07l-1.72 1.71"/><path d="M14 11a5 5 0 0 0-7.54-.54l-3 3a5 5 0 0 0 7.07 7.07l1.71-1.71"/>',
    external: '<path d="M18 13v6a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h6"/><path d="M15 3h6v6M10 14 21 3"/>',
    lock: '<rect x="3" y="11" width="18" height="11" rx="2"/><path d="M7 11V7a5 5 0 0 1 10 0v4"/>',
    user: '<path d="M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2"/><circle cx="12" cy="7" r="4"/>',
    clock: '<circle cx="12" cy="12" r="10"/><path d="M12 6v6l4 2"/>',
    plug: '<path d="M9 2v6M15 2v6M6 8h12v4a6 6 0 0 1-12 0V8zM12 18v4"/>',
    loader: '<path d="M21 12a9 9 0 1 1-6.22-8.56"/>',
    x: '<path d="M18 6 6 18M6 6l12 12"/>',
    pause: '<circle cx="12" cy="12" r="10"/><path d="M10 15V9M14 15V9"/>',
    logout: '<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/><path d="m16 17 5-5-5-5M21 12H9"/>',
    sparkle: '<path d="M12 3v4M12 17v4M3 12h4M17 12h4M5.6 5.6l2.8 2.8M15.6 15.6l2.8 2.8M5.6 18.4l2.8-2.8M15.6 8.4l2.8-2.8"/>',
  };

  function icon(name, extra) {
    const span = document.createElement('span');
    span.className = 'icon' + (extra ? ' ' + extra : '');
    span.setAttribute('aria-hidden', 'true');
    span.innerHTML =
      '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" ' +
      'stroke-linecap="round" stroke-linejoin="round" focusable="false">' + ICONS[name] + '</svg>';
    return span;
  }

  // ---------------------------------------------------------------------------------------
  // DOM helpers (text only: user data never goes through innerHTML)

  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // Empties an element and appends children (nested arrays flattened, null/false skipped).
  function replace(el, ...children) {
    el.replaceChildren();
    return append(el, children);
  }

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const main = () => document.getElementById('main');

  function mount(...nodes) {
    replace(main(), nodes);
  }

  function loading(text) {
    return h('div', { class: 'loading', role: 'status' }, icon('loader', 'spin'), ' ', text || 'Loading…');
  }

  function focusHeading() {
    const h1 = $('h1', main());
    if (h1) {
      h1.setAttribute('tabindex', '-1');
      h1.focus({ preventScroll: true });
    }
  }

  function ago(ms) {
    if (!ms) return '';
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (s < 45) return 'just now';
    if (s < 90) return '1 min ago';
    const m = Math.round(s / 60);
    if (m < 60) return m + ' min ago';
    const hrs = Math.round(m / 60);
    if (hrs < 24) return hrs + (hrs === 1 ? ' hour ago' : ' hours ago');
    const d = Math.round(hrs / 24);
    if (d < 30) return d + (d === 1 ? ' day ago' : ' days ago');
    return 'on ' + new Date(ms).toLocaleDateString();
  }

  function timeEl(ms, prefix) {
    const el = h('time', { 'data-at': ms, 'data-prefix': prefix || '', datetime: new Date(ms).toISOString(), title: new Date(ms).toLocaleString() });
    el.textContent = (prefix || '') + ago(ms);
    return el;
  }

  function tickTimes() {
    for (const el of $$('time[data-at]')) {
      el.textContent = (el.dataset.prefix || '') + ago(Number(el.dataset.at));
    }
  }

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many || one + 's');
  }

  function toast(message, kind) {
    const t = h('div', { class: 'toast' + (kind === 'error' ? ' error' : '') }, icon(kind === 'error' ? 'alert' : 'check'), h('span', {}, message));
    $('#toasts').appendChild(t);
    setTimeout(() => t.remove(), kind === 'error' ? 8000 : 4000);
  }

  // ---------------------------------------------------------------------------------------
  // API

  class ApiError extends Error {
    // `errors`: every problem the service found ({code, message, field}), this one first.
    constructor(status, code, message, field, errors) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
      this.errors = errors && errors.length ? errors : [{ code, message, field }];
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + S.token, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch('/api/v1' + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (_) {
      throw new ApiError(0, 'network', 'The service could not be reached. Check the connection and try again.', null);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const message = err.message ||
        (res.status >= 500 ? 'The service failed (internal error). Try again in a moment.' : 'The request failed (HTTP ' + res.status + ').');
      if (res.status === 401 && path !== '/me') {
        signOut('Your token is no longer accepted (' + message + '). Sign in again.');
      }
      throw new ApiError(res.status, err.code || String(res.status), message, err.field || null, data && data.errors);
    }
    return data;
  }

  const isAdmin = () => S.me && S.me.role === 'admin';
  const provider = (id) => S.providers.find((p) => p.id === id);
  const projectName = (id) => (S.projects.find((p) => p.id === id) || {}).name || id;

  async function loadProviders() {
    const list = await api('GET', '/providers');
    const rank = (p) => {
      const i = PROVIDER_ORDER.indexOf(p.id);
      return i < 0 ? PROVIDER_ORDER.length : i;
    };
    list.sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
    S.providers = list;
  }

  async function loadProjects() {
    const list = await api('GET', '/projects');
    list.sort((a, b) => a.name.localeCompare(b.name));
    S.projects = list;
  }

  // ---------------------------------------------------------------------------------------
  // Sign-in, chrome, routing

  async function boot() {
    S.token = sessionStorage.getItem(TOKEN_KEY);
    if (!S.token) {
      renderSignIn();
      return;
    }
    try {
      S.me = await api('GET', '/me');
    } catch (e) {
      if (e.status === 401) {
        sessionStorage.removeItem(TOKEN_KEY);
        renderSignIn('That token is not valid any more. Paste a current one.');
      } else {
        mountError(e, boot);
      }
      return;
    }
    mount(loading());
    try {
      await Promise.all([loadProviders(), loadProjects()]);
    } catch (e) {
      mountError(e, boot);
      return;
    }
    renderChrome();
    if (!S.routed) {
      window.addEventListener('hashchange', route);
      window.addEventListener('beforeunload', (ev) => {
        if (S.unsaved && S.unsaved()) ev.preventDefault();
      });
      S.routed = true;
    }
    route();
  }

  function renderSignIn(message) {
    $('#topbar').hidden = true;
    document.title = 'Sign in · TestOrchestrator';
    const input = h('input', {
      type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false',
      class: 'mono', placeholder: 'its_…', required: true, 'aria-describedby': 'token-help',
    });
    const error = h('div', { class: 'field-error', id: 'token-error', role: 'alert', hidden: !message }, icon('alert'), h('span', {}, message || ''));
    const button = h('button', { type: 'submit', class: 'btn btn-primary', id: 'sign-in' }, 'Continue');
    const form = h('form', { class: 'card card-pad', novalidate: true },
      h('h1', {}, 'Sign in'),
      h('p', { class: 'muted' }, 'Paste your API token to manage integration sources or link issues.'),
      h('div', { class: 'field', 'data-field': 'token' },
        h('label', { for: 'token' }, 'API token'),
        input,
        h('div', { class: 'help', id: 'token-help' }, 'Ask an admin for a token. It is kept only in this browser tab until you sign out or close it.'),
        error),
      button);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = input.value.trim();
      const fail = (text) => {
        error.hidden = false;
        error.lastChild.textContent = text;
        input.setAttribute('aria-invalid', 'true');
        input.focus();
      };
      if (!value) {
        fail('Paste a token first.');
        return;
      }
      button.disabled = true;
      S.token = value;
      try {
        S.me = await api('GET', '/me');
      } catch (e) {
        button.disabled = false;
        S.token = null;
        fail(e.status === 401 ? 'This token was not accepted: it is mistyped, revoked, or from another installation.' : e.message);
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      boot();
    });
    mount(h('div', { class: 'signin' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), h('span', {}, 'TestOrchestrator')),
      form));
    input.focus();
  }

  function signOut(message) {
    S.unsaved = null;
    sessionStorage.removeItem(TOKEN_KEY);
    S.token = null;
    S.me = null;
    clearTimers();
    if (location.hash) history.replaceState(null, '', location.pathname);
    renderSignIn(message);
  }

  function renderChrome() {
    $('#topbar').hidden = false;
    const nav = $('#mainnav');
    const links = isAdmin()
      ? [['sources', '#/sources', 'Sources'], ['links', '#/links', 'Links']]
      : [['links', '#/links', 'Links']];
    replace(nav, ...links.map(([key, href, text]) => h('a', { href, 'data-nav': key }, text)));
    const who = $('#whoami');
    const projects = isAdmin() ? null : S.me.projects.map(projectName).join(', ');
    replace(who,
      h('span', { class: 'who-name', id: 'who-name' }, S.me.name),
      h('span', { class: 'role-badge', id: 'who-role' }, S.me.role),
      projects ? h('span', { class: 'who-projects', title: 'Your projects' }, projects) : null,
      h('button', { type: 'button', class: 'btn btn-small', id: 'sign-out', onclick: () => signOut() }, icon('logout'), 'Sign out'),
    );
  }

  function setNav(key, title) {
    for (const a of $$('#mainnav a')) {
      if (a.dataset.nav === key) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = title + ' · TestOrchestrator';
  }

  function clearTimers() {
    for (const t of S.timers) clearInterval(t);
    S.timers = [];
  }

  function route() {
    if (!S.me) return;
    // Leaving an editor with unsaved changes: ask first, back at its address meanwhile.
    if (S.unsaved && S.unsaved() && location.hash !== S.hash) {
      const target = location.hash;
      history.replaceState(null, '', S.hash || location.pathname);
      confirmDialog('Discard your changes?', [h('p', {}, 'This source has changes that are not saved yet.')], 'Discard changes')
        .then((discard) => {
          if (!discard) return;
          S.unsaved = null;
          location.hash = target;
        });
      return;
    }
    S.unsaved = null;
    S.hash = location.hash;
    clearTimers();
    S.timers.push(setInterval(tickTimes, 30000));
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
    if (!isAdmin() || parts[0] === 'links') {
      showLinks();
    } else if (parts[0] === 'sources' && parts[1] === 'new') {
      showEditor(null);
    } else if (parts[0] === 'sources' && parts[1]) {
      showEditor(decodeURIComponent(parts[1]));
    } else {
      showSources();
    }
  }

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  // Shows a failed view's error, unless the failure signed the user out (a revoked token):
  // then the sign-in form, with the reason, stays.
  function mountError(e, retry) {
    if (e.status === 401) return;
    mount(errorState(e, retry));
  }

  function errorState(e, retry) {
    return h('div', { class: 'card empty' },
      h('div', { class: 'empty-icon' }, icon('alert')),
      h('h2', {}, 'Something went wrong'),
      h('p', {}, e.message),
      retry ? h('button', { type: 'button', class: 'btn', onclick: retry }, 'Try again') : null);
  }

  function pageHead(crumbs, title, sub, actions) {
    return h('div', { class: 'page-head' },
      h('div', {},
        h('ol', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, crumbs.map((c) => h('li', {}, c))),
        h('h1', {}, title),
        sub ? h('p', { class: 'sub' }, sub) : null),
      actions ? h('div', { class: 'page-actions' }, actions) : null);
  }

  // ---------------------------------------------------------------------------------------
  // Sources list

  async function showSources() {
    setNav('sources', 'Sources');
    mount(loading('Loading sources…'));
    let sources;
    try {
      sources = await api('GET', '/sources');
    } catch (e) {
      mountError(e, showSources);
      return;
    }
    const add = h('a', { class: 'btn btn-primary', href: '#/sources/new', id: 'add-source' }, icon('plus'), 'Add Source');
    const head = pageHead(['Admin', 'External References', 'Sources'], 'Sources',
      'Connections to your issue trackers. Project members link test objects to issues through the sources enabled for their project.',
      sources.length ? add : null);
    if (!sources.length) {
      mount(head, h('div', { class: 'card empty', id: 'sources-empty' },
        h('div', { class: 'empty-icon' }, icon('plug')),
        h('h2', {}, 'No sources yet'),
        h('p', {}, 'Add a source to connect a Jira Cloud site, a GitHub repository, an Azure DevOps project, a Linear workspace, a GitLab project or any other tracker.'),
        add));
      focusHeading();
      return;
    }
    const table = h('table', { class: 'table', id: 'sources' },
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Provider'),
        h('th', { scope: 'col' }, 'Display name'),
        h('th', { scope: 'col' }, 'Base URL'),
        h('th', { scope: 'col', class: 'col-enabled' }, 'Enabled'),
        h('th', { scope: 'col', class: 'col-test' }, 'Last test'),
        h('th', { scope: 'col', class: 'col-health' }, 'Health'),
        h('th', { scope: 'col', class: 'col-actions' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
      h('tbody', {}, sources.map(sourceRow)));
    mount(head, h('div', { class: 'card table-wrap' }, table));
    focusHeading();
  }

  function initials(name) {
    const words = (name || '?').split(/\s+/).filter(Boolean);
    return ((words[0] || '?')[0] + (words[1] ? words[1][0] : '')).toUpperCase();
  }

  function providerCell(providerId, providerName) {
    return h('span', { class: 'provider-cell' },
      h('span', { class: 'provider-logo p-' + providerId, 'aria-hidden': 'true' }, initials(providerName || providerId)),
      h('span', { class: 'provider-name' }, providerName || providerId));
  }

  function projectsSummary(projects) {
    if (!projects || projects.mode === 'all') return 'All projects';
    const ids = projects.ids || [];
    if (!ids.length) return 'No project';
    if (ids.length <= 2) return ids.map(projectName).join(', ');
    return plural(ids.length, 'project');
  }

  // The last connection test of source `s`; an edit of how the tracker is reached clears it.
  function testResultEl(result, s) {
    if (!result) {
      const edited = s && s.updated_at > s.created_at;
      return h('div', { class: 'test-result none' }, edited ? 'Not tested since the last change' : 'Not tested yet');
    }
    return h('div', { class: 'test-result ' + (result.ok ? 'ok' : 'fail'), 'data-code': result.code },
      icon(result.ok ? 'check' : 'cross'),
      h('span', {},
        h('span', { class: 'msg' }, result.message),
        result.at ? h('span', { class: 'when' }, timeEl(result.at, result.ok ? 'Succeeded ' : 'Failed ')) : null));
  }

  // When a future moment is: "in 12 min", "at 14:05" (today) or "on 1/2/2027, 14:05".
  function until(ms) {
    const m = Math.max(1, Math.round((ms - Date.now()) / 60000));
    if (m < 60) return 'in ' + plural(m, 'min', 'min');
    const at = new Date(ms);
    const time = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return at.toDateString() === new Date().toDateString() ? 'at ' + time : 'on ' + at.toLocaleDateString() + ', ' + time;
  }

  // A source's health (GET /sources/{id}/health): how its recent calls went and the
  // rate-limit headroom its tracker announces.
  const HEALTH_TEXT = { unknown: 'No calls yet', ok: 'Healthy', degraded: 'Degraded', failing: 'Failing', 'rate-limited': 'Rate-limited' };

  function healthEl(health) {
    const hl = health || { status: 'unknown' };
    const lines = [];
    if (hl.status === 'degraded') {
      lines.push(Math.round(hl.error_rate * 100) + '% of the last ' + plural(hl.window_calls, 'call') + ' failed');
    } else if (hl.status === 'failing' && hl.last_error) {
      lines.push('Last call failed: ' + hl.last_error.code);
    }
    const rl = hl.rate_limit;
    if (rl && rl.active && rl.paused_until && rl.paused_until > Date.now()) {
      lines.push('Paused until ' + new Date(rl.paused_until).toLocaleTimeString() + ', as the tracker asked');
    }
    if (rl && rl.remaining != null) {
      let text = rl.remaining.toLocaleString() + (rl.limit != null ? ' of ' + rl.limit.toLocaleString() : '') + ' requests left';
      if (rl.resets_at && rl.resets_at > Date.now()) text += ' · resets ' + until(rl.resets_at);
      lines.push(text);
    }
    return h('div', { class: 'health ' + hl.status, 'data-status': hl.status, title: hl.last_error ? 'Last error: ' + hl.last_error.message : null },
      h('span', { class: 'health-status' }, h('span', { class: 'dot', 'aria-hidden': 'true' }), HEALTH_TEXT[hl.status] || hl.status),
      lines.map((l) => h('span', { class: 'health-line' }, l)));
  }

  function sourceRow(s) {
    const name = s.display_name;
    const tr = h('tr', { 'data-source-id': s.id, 'data-name': name });
    const toggle = h('input', { type: 'checkbox', role: 'switch', class: 'enabled-toggle', checked: s.enabled, 'aria-label': 'Enabled: ' + name });
    const state = h('span', { class: 'switch-text' }, s.enabled ? 'Enabled' : 'Disabled');
    toggle.addEventListener('change', async () => {
      const want = toggle.checked;
      // Disabling stops every link of the source from syncing: ask first, with the count.
      if (!want) {
        toggle.checked = true;
        const confirmed = await confirmWithImpact(s, 'disable-impact',
          'Disable “' + name + '”?',
          [h('p', {}, 'Members can no longer link through it and its links stop syncing until you enable it again.')],
          'Disable source', 'will stop syncing until you enable it again');
        toggle.focus();
        if (!confirmed) return;
        toggle.checked = false;
      }
      toggle.disabled = true;
      state.textContent = want ? 'Enabling…' : 'Disabling…';
      try {
        const v = await api('POST', '/sources/' + encodeURIComponent(s.id) + (want ? '/enable' : '/disable'));
        s.enabled = v.enabled;
        toast(want ? '“' + name + '” is enabled: project members can use it.' : '“' + name + '” is disabled: its links stop syncing until you enable it again.');
      } catch (e) {
        toast('Could not ' + (want ? 'enable' : 'disable') + ' “' + name + '”: ' + e.message, 'error');
      } finally {
        toggle.checked = s.enabled;
        toggle.disabled = false;
        state.textContent = s.enabled ? 'Enabled' : 'Disabled';
        toggle.focus();
      }
    });
    const result = h('div', { class: 'test-cell', 'aria-live': 'polite' }, testResultEl(s.last_test, s));
    const health = h('div', { class: 'health-cell' }, healthEl(s.health));
    const testBtn = h('button', { type: 'button', class: 'icon-btn test', title: 'Test connection', 'aria-label': 'Test connection of ' + name }, icon('wrench'));
    testBtn.addEventListener('click', () => runTest(s, testBtn, result, health));
    const editBtn = h('a', { class: 'icon-btn edit', href: '#/sources/' + encodeURIComponent(s.id), title: 'Edit', 'aria-label': 'Edit ' + name }, icon('pencil'));
    const delBtn = h('button', { type: 'button', class: 'icon-btn danger delete', title: 'Delete', 'aria-label': 'Delete ' + name }, icon('trash'));
    delBtn.addEventListener('click', () => confirmDelete(s));
    append(tr, [
      h('td', {}, providerCell(s.provider, s.provider_name),
        s.plugin_status === 'missing' ? h('span', { class: 'plugin-missing' }, 'Plugin not loaded: cannot test or sync') : null,
        s.plugin_status === 'incompatible' ? h('span', { class: 'plugin-missing plugin-incompatible' }, 'Does not fit the loaded plugin version, not synced: ' + s.plugin_problem) : null),
      h('td', {}, h('div', { class: 'source-name' }, name), h('div', { class: 'faint' }, projectsSummary(s.projects))),
      h('td', {}, h('span', { class: 'base-url' }, s.base_url)),
      h('td', {}, h('label', { class: 'switch' }, toggle, state)),
      h('td', {}, result),
      h('td', {}, health),
      h('td', { class: 'col-actions' }, testBtn, editBtn, delBtn),
    ]);
    return tr;
  }

  async function runTest(s, button, cell, healthCell) {
    button.disabled = true;
    const old = button.firstChild;
    button.replaceChild(icon('loader', 'spin'), old);
    replace(cell, h('div', { class: 'test-result running' }, 'Testing the connection…'));
    let result;
    try {
      const out = await api('POST', '/sources/' + encodeURIComponent(s.id) + '/test');
      result = { ok: out.ok, code: out.code, message: out.message, at: Date.now() };
      if (out.ok && out.detail) result.message = out.message + ' · ' + out.detail;
    } catch (e) {
      result = { ok: false, code: e.code, message: e.message, at: Date.now() };
    }
    s.last_test = result;
    replace(cell, testResultEl(result));
    button.replaceChild(icon('wrench'), button.firstChild);
    button.disabled = false;
    try {
      s.health = await api('GET', '/sources/' + encodeURIComponent(s.id) + '/health');
      replace(healthCell, healthEl(s.health));
    } catch (e) {
      // The test result above is what the admin asked for; the health shows on next load.
    }
  }

  // A modal confirmation built on <dialog>; resolves true when confirmed.
  function confirmDialog(title, body, okText) {
    const dlg = $('#confirm');
    $('#confirm-title').textContent = title;
    replace($('#confirm-message'), ...[].concat(body));
    $('#confirm-ok').textContent = okText;
    dlg.returnValue = '';
    dlg.showModal();
    $('#confirm-cancel').focus();
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    });
  }

  // A confirmation that counts the links a change to source `s` leaves without sync; `what`
  // says what happens to them. Resolves true when confirmed.
  function confirmWithImpact(s, id, title, intro, okText, what) {
    const impact = h('div', { class: 'impact', id, role: 'status' }, 'Counting the links that use this source…');
    const answer = confirmDialog(title, intro.concat([impact]), okText);
    api('GET', '/sources/' + encodeURIComponent(s.id) + '/impact').then((n) => {
      impact.dataset.links = n.links;
      impact.textContent = n.links
        ? plural(n.links, 'link') + ' in ' + plural(n.projects, 'project') + ' ' + what +
          '. They stay visible with their last known status and assignee.'
        : 'No links use this source, so no link is affected.';
    }).catch(() => {
      impact.textContent = 'Links created through this source are not removed: they stay visible.';
    });
    return answer;
  }

  async function confirmDelete(s) {
    const answer = confirmWithImpact(s, 'delete-impact', 'Delete “' + s.display_name + '”?',
      [h('p', {}, 'This removes the source’s configuration and its stored credentials.'),
        h('p', { class: 'muted' }, 'To stop it only for a while, disable it instead.')],
      'Delete source', 'will be left without sync and no longer update');
    if (!(await answer)) return;
    try {
      await api('DELETE', '/sources/' + encodeURIComponent(s.id));
      toast('Deleted “' + s.display_name + '”. Its links stay, marked as not syncing.');
    } catch (e) {
      toast('Could not delete “' + s.display_name + '”: ' + e.message, 'error');
    }
    showSources();
  }

  // ---------------------------------------------------------------------------------------
  // Source editor

  async function showEditor(id) {
    setNav('sources', id ? 'Edit source' : 'Add Source');
    mount(loading());
    let existing = null;
    try {
      const [source] = await Promise.all([id ? api('GET', '/sources/' + encodeURIComponent(id)) : null, loadProjects()]);
      existing = source;
    } catch (e) {
      mountError(e, () => showEditor(id));
      return;
    }
    if (!S.providers.length) {
      mount(errorState(new Error('No provider plugins are loaded, so no source can be configured. Check the plugins directory of the service.')));
      return;
    }
    const editor = new Editor(existing);
    mount(editor.el);
    if (existing) editor.panels.capabilities.appendChild(webhookSection(existing.id));
    focusHeading();
  }

  // -- Webhooks ("Process webhooks") of a stored source: the URL, the verification scheme, the
  // secret (pasted, or generated and shown once) and the tracker's set-up steps. Saved on their
  // own (PUT /sources/{id}/webhook), apart from the source form.
  function webhookSection(sourceId) {
    const path = '/sources/' + encodeURIComponent(sourceId) + '/webhook';
    const box = h('div', { class: 'webhooks', id: 'webhooks' });
    // Typing here is not an unsaved change of the source form.
    for (const kind of ['input', 'change']) box.addEventListener(kind, (ev) => ev.stopPropagation());
    const status = h('p', { class: 'muted', id: 'webhook-status', role: 'status', 'aria-live': 'polite' });
    const render = (w, generated) => {
      if (w.unsupported) {
        replace(box, h('p', { class: 'muted', id: 'webhook-unsupported' }, 'Process webhooks is ' + w.unsupported + '.'));
        return;
      }
      const url = w.path ? location.origin + w.path : null;
      const scheme = h('select', { id: 'webhook-scheme' },
        w.schemes.map((s) => h('option', { value: s.id, selected: s.id === (w.scheme || w.schemes[0].id) ? true : null }, s.label)));
      const secret = h('input', { type: 'password', id: 'webhook-secret', autocomplete: 'off', placeholder: w.secret_set ? 'Set (not shown); paste to replace' : 'Paste the tracker’s secret' });
      const steps = h('ol', { id: 'webhook-steps' });
      const showSteps = () => {
        const chosen = w.schemes.find((s) => s.id === scheme.value) || w.schemes[0];
        replace(steps, chosen.setup.split('\n').filter((l) => l.trim()).map((line) =>
          h('li', {}, line.split('{webhookUrl}').flatMap((part, i) => i ? [h('code', {}, url || '(the URL appears once saved)'), part] : [part]))));
      };
      scheme.addEventListener('change', showSteps);
      showSteps();
      const save = async (body, button) => {
        button.disabled = true;
        try {
          const next = await api('PUT', path, Object.assign({ scheme: scheme.value }, body));
          render(next, next.secret);
          status.textContent = next.secret ? 'A new secret was generated.' : 'Webhook settings saved.';
        } catch (e) {
          status.textContent = e.message;
          button.disabled = false;
        }
      };
      const saveBtn = h('button', { type: 'button', class: 'btn', id: 'webhook-save' }, 'Save webhook settings');
      saveBtn.addEventListener('click', () => save(secret.value.trim() ? { secret: secret.value } : {}, saveBtn));
      const genBtn = h('button', { type: 'button', class: 'btn', id: 'webhook-generate' }, 'Generate a new secret');
      genBtn.addEventListener('click', () => save({ generate_secret: true }, genBtn));
      const hh = w.health;
      const rejected = Object.entries(hh.rejected).map(([k, n]) => k + ' ' + n).join(', ') || 'none';
      replace(box,
        w.capability_on ? null : h('p', { class: 'note warn', id: 'webhook-off' }, '“Process webhooks” is off: events are answered but ignored until it is on and saved.'),
        h('div', { class: 'field' }, h('label', { for: 'webhook-url' }, 'Webhook URL'),
          h('input', { type: 'text', id: 'webhook-url', readonly: true, value: url || 'Save the webhook settings to get this source’s URL' })),
        h('div', { class: 'field' }, h('label', { for: 'webhook-scheme' }, 'Verification'), scheme),
        h('div', { class: 'field' }, h('label', { for: 'webhook-secret' }, 'Webhook secret'), secret),
        generated ? h('div', { class: 'note', id: 'webhook-generated' },
          'Copy this secret into the tracker now: it is not shown again. ', h('code', {}, generated)) : null,
        h('div', { class: 'editor-foot' }, saveBtn, genBtn),
        status,
        h('h3', {}, 'Set-up in the tracker'), steps,
        h('p', { class: 'muted', id: 'webhook-health' },
          'Events received ' + hh.received + ', accepted ' + hh.accepted + ', processed ' + hh.processed +
          ', rejected: ' + rejected + '. ', hh.last_event_at ? timeEl(hh.last_event_at, 'Last event ') : 'No event yet.'));
    };
    api('GET', path).then((w) => render(w, null), (e) => replace(box, h('p', { class: 'muted' }, 'Webhooks: ' + e.message)));
    return h('section', { class: 'webhook-section', 'aria-labelledby': 'webhooks-title' },
      h('h2', { class: 'section-title', id: 'webhooks-title' }, 'Webhooks'), box);
  }

  const CAPABILITIES = [
    {
      name: 'read_issue_details', label: 'Read issue details',
      text: 'Fetch and cache the external issue’s current status and assignee, displayed alongside the link.',
    },
    {
      name: 'create_issues', label: 'Create issues',
      text: 'Show a shortcut button that opens the external system’s new-issue form, using the Create URL template.',
    },
    {
      name: 'add_comments', label: 'Add comments',
      text: 'Post comments to external issues from within TestOrchestrator.',
    },
    {
      name: 'process_webhooks', label: 'Process webhooks',
      text: 'Accept inbound webhook events from the external system to trigger automatic data refreshes.',
    },
  ];

  class Editor {
    constructor(existing) {
      this.existing = existing;
      const first = existing ? provider(existing.provider) || S.providers[0] : S.providers[0];
      const ex = existing || {};
      this.values = {}; // "provider|auth type|field" -> typed value, kept across switches
      this.settings = {}; // "provider|setting" -> value
      if (existing) {
        for (const [k, v] of Object.entries(ex.auth_fields || {})) this.values[ex.provider + '|' + ex.auth_type + '|' + k] = v;
        for (const [k, v] of Object.entries(ex.settings || {})) this.settings[ex.provider + '|' + k] = v;
      }
      this.m = {
        provider: existing ? ex.provider : first.id,
        display_name: ex.display_name || '',
        base_url: ex.base_url || '',
        auth_type: existing ? ex.auth_type : (first.auth_types[0] || {}).id,
        issue_url_template: existing ? ex.issue_url_template || '' : first.default_issue_url_template || '',
        create_url_template: existing ? ex.create_url_template || '' : first.default_create_url_template || '',
        key_pattern: existing ? ex.key_pattern || '' : first.default_key_pattern || '',
        sample_key: first.key_example || '',
        enabled: existing ? ex.enabled : true,
        caps: Object.assign({ read_issue_details: true, create_issues: false, add_comments: false, process_webhooks: false }, ex.capabilities || {}),
        mode: existing ? ex.projects.mode : 'all',
        ids: new Set(existing && ex.projects.ids ? ex.projects.ids : []),
        ca_bundle_pem: (ex.network && ex.network.ca_bundle_pem) || '',
        proxy_url: (ex.network && ex.network.proxy_url) || '',
      };
      this.build();
    }

    get p() {
      return provider(this.m.provider) || {
        id: this.m.provider, name: this.m.provider, auth_types: [], settings: [], key_example: '', base_url_example: 'https://tracker.example.com',
      };
    }

    get auth() {
      return this.p.auth_types.find((a) => a.id === this.m.auth_type) || { id: this.m.auth_type, label: this.m.auth_type, fields: [] };
    }

    // -- layout

    build() {
      const ex = this.existing;
      this.banner = h('div', { class: 'banner', id: 'form-error', role: 'alert', hidden: true });
      this.tabs = {};
      this.panels = {};
      const tablist = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Source settings' });
      for (const [key, label] of [['source', 'SOURCE'], ['capabilities', 'CAPABILITIES'], ['projects', 'PROJECTS']]) {
        const tab = h('button', {
          type: 'button', role: 'tab', class: 'tab', id: 'tab-' + key, 'aria-controls': 'panel-' + key,
          'aria-selected': 'false', tabindex: '-1',
        }, label);
        tab.addEventListener('click', () => this.select(key));
        tablist.appendChild(tab);
        this.tabs[key] = tab;
        this.panels[key] = h('section', { class: 'tabpanel', role: 'tabpanel', id: 'panel-' + key, 'aria-labelledby': 'tab-' + key, hidden: true });
      }
      tablist.addEventListener('keydown', (ev) => {
        const keys = Object.keys(this.tabs);
        const i = keys.indexOf(this.current);
        let next = null;
        if (ev.key === 'ArrowRight') next = keys[(i + 1) % keys.length];
        else if (ev.key === 'ArrowLeft') next = keys[(i + keys.length - 1) % keys.length];
        else if (ev.key === 'Home') next = keys[0];
        else if (ev.key === 'End') next = keys[keys.length - 1];
        if (next) {
          ev.preventDefault();
          this.select(next);
          this.tabs[next].focus();
        }
      });

      this.buildSource();
      this.buildCapabilities();
      this.buildProjects();

      this.saveBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'save-source' }, ex ? 'Save changes' : 'Add Source');
      this.draftResult = h('div', { class: 'draft-result', id: 'draft-result', 'aria-live': 'polite' });
      const testBtn = h('button', { type: 'button', class: 'btn', id: 'test-draft', title: ex ? 'Test the edited configuration before saving it' : null }, icon('wrench'), 'Test connection');
      testBtn.addEventListener('click', () => this.testDraft(testBtn));
      const foot = h('div', { class: 'editor-foot' },
        testBtn, this.draftResult, h('span', { class: 'spacer' }),
        h('a', { class: 'btn', href: '#/sources', id: 'cancel-edit' }, 'Cancel'),
        this.saveBtn);

      const form = h('form', { class: 'card editor', id: 'source-editor', novalidate: true, autocomplete: 'off' },
        h('div', { class: 'editor-head' },
          h('ol', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' },
            h('li', {}, 'Admin'), h('li', {}, 'External References'), h('li', {}, h('a', { href: '#/sources' }, 'Sources'))),
          h('h1', {}, ex ? 'Edit “' + ex.display_name + '”' : 'Add Source'),
          h('p', { class: 'sub muted' }, ex
            ? 'Changes take effect immediately: the next sync of this source uses the new configuration.'
            : 'Connect one instance of an issue tracker. You can test the connection before saving.')),
        tablist,
        this.banner,
        this.panels.source, this.panels.capabilities, this.panels.projects,
        foot);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        this.save();
      });
      form.addEventListener('input', (ev) => this.clearFieldError(ev.target));
      // Any change makes leaving ask first (see `route`), until it is saved.
      for (const kind of ['input', 'change']) form.addEventListener(kind, () => { this.dirty = true; });
      S.unsaved = () => this.dirty;
      form.addEventListener('change', (ev) => this.clearFieldError(ev.target));
      this.el = form;
      this.select('source');
    }

    select(key) {
      this.current = key;
      for (const [k, tab] of Object.entries(this.tabs)) {
        const on = k === key;
        tab.setAttribute('aria-selected', on ? 'true' : 'false');
        tab.tabIndex = on ? 0 : -1;
        this.panels[k].hidden = !on;
      }
    }

    field(name, id, labelText, control, opts) {
      const o = opts || {};
      const labelEl = h('label', { for: id }, labelText,
        o.required ? h('span', { class: 'req', 'aria-hidden': 'true' }, '*') : null,
        o.optional ? h('span', { class: 'optional' }, '(optional)') : null,
        o.badge || null);
      const help = o.help ? h('div', { class: 'help', id: id + '-help' }, o.help) : null;
      if (help) control.setAttribute('aria-describedby', id + '-help');
      if (o.required) control.setAttribute('aria-required', 'true');
      return h('div', { class: 'field', 'data-field': name }, labelEl, control, o.after || null, help);
    }

    input(id, value, attrs, onInput) {
      const el = h('input', Object.assign({ type: 'text', id, value: value || '' }, attrs || {}));
      if (onInput) {
        // "change" too: a programmatic clear (autofill, WebDriver) fires no "input".
        el.addEventListener('input', () => onInput(el.value));
        el.addEventListener('change', () => onInput(el.value));
      }
      return el;
    }

    buildSource() {
      const m = this.m;
      const panel = this.panels.source;
      this.providerSelect = h('select', { id: 'f-provider', name: 'provider' },
        S.providers.map((p) => h('option', { value: p.id }, p.name)));
      if (!provider(m.provider)) this.providerSelect.appendChild(h('option', { value: m.provider }, m.provider + ' (plugin not loaded)'));
      this.providerSelect.value = m.provider;
      this.providerSelect.addEventListener('change', () => this.switchProvider(this.providerSelect.value));

      this.nameInput = this.input('f-display_name', m.display_name, { maxlength: '100', placeholder: 'e.g. Our Jira' }, (v) => { m.display_name = v; });
      this.baseInput = this.input('f-base_url', m.base_url, { type: 'url', class: 'mono', inputmode: 'url', spellcheck: 'false' }, (v) => {
        m.base_url = v;
        this.refreshPreviews();
      });
      this.baseHelp = h('span', {});
      this.authSelect = h('select', { id: 'f-auth_type', name: 'auth_type' });
      this.authSelect.addEventListener('change', () => {
        this.captureAuth();
        m.auth_type = this.authSelect.value;
        this.renderAuthFields();
      });
      this.authBox = h('div', { class: 'auth-box', id: 'auth-fields', 'data-field': 'auth.fields', 'aria-live': 'polite' });

      this.issueInput = this.input('f-issue_url_template', m.issue_url_template, { class: 'mono', spellcheck: 'false' }, (v) => {
        m.issue_url_template = v;
        this.refreshPreviews();
      });
      this.createInput = this.input('f-create_url_template', m.create_url_template, { class: 'mono', spellcheck: 'false' }, (v) => {
        m.create_url_template = v;
        this.refreshPreviews();
        this.refreshCreateNote();
      });
      this.issuePreview = h('div', { class: 'preview', id: 'issue-url-preview', 'aria-live': 'polite' });
      this.createPreview = h('div', { class: 'preview', id: 'create-url-preview', 'aria-live': 'polite' });
      this.patternInput = this.input('f-key_pattern', m.key_pattern, { class: 'mono', spellcheck: 'false' }, (v) => {
        m.key_pattern = v;
        this.refreshMatch();
      });
      this.sampleInput = this.input('f-sample_key', m.sample_key, { class: 'mono', spellcheck: 'false' }, (v) => {
        m.sample_key = v;
        this.refreshMatch();
        this.refreshPreviews();
      });
      this.match = h('div', { class: 'match', id: 'key-match', 'aria-live': 'polite' });
      this.settingsBox = h('div', { id: 'settings-fields' });
      this.proxyInput = this.input('f-proxy_url', m.proxy_url, { class: 'mono', spellcheck: 'false', placeholder: 'http://proxy.example.com:3128' }, (v) => {
        m.proxy_url = v;
      });
      this.caInput = h('textarea', { id: 'f-ca_bundle_pem', class: 'mono', rows: '4', spellcheck: 'false', placeholder: '-----BEGIN CERTIFICATE-----' });
      this.caInput.value = m.ca_bundle_pem;
      this.caInput.addEventListener('input', () => {
        m.ca_bundle_pem = this.caInput.value;
      });
      this.enabledInput = h('input', { type: 'checkbox', role: 'switch', id: 'f-enabled', checked: m.enabled });
      this.enabledInput.addEventListener('change', () => {
        m.enabled = this.enabledInput.checked;
      });
      this.credNote = h('div', { class: 'note warn', id: 'credentials-note', hidden: true },
        'Changing the provider or the authentication type replaces the stored credentials: enter new ones below.');

      const resetBtn = (key, input, what) => {
        const b = h('button', { type: 'button', class: 'btn btn-small btn-ghost', title: 'Use ' + this.p.name + '’s suggested ' + what }, 'Use default');
        b.addEventListener('click', () => {
          const v = this.p[key] || '';
          input.value = v;
          input.dispatchEvent(new Event('input', { bubbles: true }));
          input.focus();
        });
        return b;
      };

      append(panel, [
        h('h2', { class: 'section-title' }, 'Connection'),
        h('div', { class: 'grid2' },
          this.field('provider', 'f-provider', 'Provider', this.providerSelect, { required: true, help: 'The external system this source connects to.' }),
          this.field('display_name', 'f-display_name', 'Display name', this.nameInput, {
            required: true, help: 'The label your team sees when choosing a source. Make it tell this instance apart from others.',
          })),
        this.field('base_url', 'f-base_url', 'Base URL', this.baseInput, { required: true, help: this.baseHelp }),
        h('div', { class: 'grid2' },
          this.field('auth.type', 'f-auth_type', 'Authentication type', this.authSelect, {
            required: true, help: 'How TestOrchestrator identifies itself to the external system.',
          }),
          h('div', {})),
        this.credNote,
        this.authBox,
        h('h2', { class: 'section-title' }, 'Issue links'),
        this.field('issue_url_template', 'f-issue_url_template', 'Issue URL template', this.issueInput, {
          optional: true, after: h('div', { class: 'inline-row' }, h('div', { class: 'grow' }, this.issuePreview), resetBtn('default_issue_url_template', this.issueInput, 'issue URL template')),
          help: 'Opens an issue in the external system. Placeholders: {baseUrl} (the base URL, without a trailing slash) and {key}.',
        }),
        this.field('create_url_template', 'f-create_url_template', 'Create URL template', this.createInput, {
          optional: true, after: h('div', { class: 'inline-row' }, h('div', { class: 'grow' }, this.createPreview), resetBtn('default_create_url_template', this.createInput, 'create URL template')),
          help: 'Opens the external system’s new-issue form. Placeholder: {baseUrl}. Needed for the “Create issues” capability.',
        }),
        h('div', { class: 'grid2' },
          this.field('key_pattern', 'f-key_pattern', 'Key pattern', this.patternInput, {
            optional: true, after: this.match,
            help: 'A regular expression keys must match before a link is saved. Prevents typos from creating invalid references.',
          }),
          this.field('sample_key', 'f-sample_key', 'Sample key', this.sampleInput, {
            help: 'Try a key your team would enter; used for the previews and the pattern check. Not saved.',
          })),
        this.settingsBox,
        h('h2', { class: 'section-title' }, 'Network'),
        h('div', { class: 'grid2' },
          this.field('network.proxy_url', 'f-proxy_url', 'HTTP(S) proxy', this.proxyInput, {
            optional: true, help: 'Calls to this tracker go through this proxy.',
          }),
          this.field('network.ca_bundle_pem', 'f-ca_bundle_pem', 'CA bundle (PEM)', this.caInput, {
            optional: true, help: 'For trackers whose certificate is signed by your own authority; added to the system roots.',
          })),
        h('h2', { class: 'section-title' }, 'Availability'),
        h('div', { class: 'field', 'data-field': 'enabled' },
          h('label', { class: 'switch', for: 'f-enabled' }, this.enabledInput, h('span', { class: 'switch-label' }, 'Enabled')),
          h('div', { class: 'help' }, 'Enabled sources appear when project members add external references. You can disable a source at any time without deleting it.')),
      ]);
      this.renderProviderParts();
    }

    // Everything that depends on the provider: placeholders, auth types, fields, settings.
    renderProviderParts() {
      const p = this.p;
      this.baseInput.placeholder = p.base_url_example || '';
      this.baseHelp.textContent = 'The root URL of the ' + p.name + ' instance, e.g. ' + (p.base_url_example || 'https://tracker.example.com') + '. Used to build issue links and API calls.';
      this.issueInput.placeholder = p.default_issue_url_template || '{baseUrl}/…/{key}';
      this.createInput.placeholder = p.default_create_url_template || '{baseUrl}/…/new';
      this.patternInput.placeholder = p.default_key_pattern || 'e.g. ^[A-Z]+-\\d+$';
      this.sampleInput.placeholder = p.key_example || '';
      this.refreshCapabilitySupport();
      replace(this.authSelect, ...p.auth_types.map((a) => h('option', { value: a.id }, a.label)));
      if (!p.auth_types.some((a) => a.id === this.m.auth_type)) {
        this.authSelect.appendChild(h('option', { value: this.m.auth_type }, this.m.auth_type));
      }
      this.authSelect.value = this.m.auth_type;
      this.renderAuthFields();
      this.renderSettings();
      this.refreshPreviews();
      this.refreshMatch();
      if (this.createNote) this.refreshCreateNote();
    }

    storedSecret(name) {
      const ex = this.existing;
      return !!(ex && ex.provider === this.m.provider && ex.auth_type === this.m.auth_type && (ex.secrets_set || []).includes(name));
    }

    captureAuth() {
      for (const input of $$('input[data-auth-field]', this.authBox)) {
        this.values[this.m.provider + '|' + this.m.auth_type + '|' + input.dataset.authField] = input.value;
      }
    }

    renderAuthFields() {
      const auth = this.auth;
      const ex = this.existing;
      this.credNote.hidden = !(ex && (ex.secrets_set || []).length && (ex.provider !== this.m.provider || ex.auth_type !== this.m.auth_type));
      const fields = auth.fields.map((f) => {
        const id = 'f-auth-' + f.name;
        const key = this.m.provider + '|' + this.m.auth_type + '|' + f.name;
        const stored = f.secret && this.storedSecret(f.name);
        const input = h('input', {
          type: f.secret ? 'password' : 'text', id, name: 'auth-' + f.name, 'data-auth-field': f.name,
          value: this.values[key] || '', spellcheck: 'false',
          autocomplete: f.secret ? 'new-password' : 'off',
          placeholder: stored ? 'set — leave blank to keep' : '',
          class: f.secret ? 'mono' : null,
        });
        const keep = () => { this.values[key] = input.value; };
        input.addEventListener('input', keep);
        input.addEventListener('change', keep);
        const help = [];
        if (f.help) help.push(f.help);
        if (stored) help.push('Stored encrypted and never shown. Leave blank to keep it, or type a new value to replace it.');
        else if (f.secret) help.push('Stored encrypted; never displayed after saving.');
        return this.field('auth.fields.' + f.name, id, f.label, input, {
          required: f.required && !stored,
          optional: !f.required,
          badge: stored ? h('span', { class: 'secret-state', 'data-secret-set': f.name }, icon('lock'), 'set') : null,
          help: help.join(' '),
        });
      });
      replace(this.authBox,
        h('div', { class: 'auth-title' }, icon('lock'), this.p.name + ' · ' + auth.label),
        fields.length ? fields : h('p', { class: 'help auth-none', id: 'auth-none' }, 'No credentials: requests are sent without authentication. Suitable for public systems.'));
    }

    renderSettings() {
      const settings = this.p.settings || [];
      if (!settings.length) {
        replace(this.settingsBox);
        return;
      }
      replace(this.settingsBox,
        h('h2', { class: 'section-title' }, this.p.name + ' settings'),
        settings.map((s) => {
          const id = 'f-setting-' + s.name;
          const key = this.m.provider + '|' + s.name;
          const input = this.input(id, this.settings[key] || '', {
            type: s.kind === 'url' ? 'url' : 'text', 'data-setting': s.name, class: s.kind === 'url' ? 'mono' : null, spellcheck: 'false',
          }, (v) => { this.settings[key] = v; });
          return this.field('settings.' + s.name, id, s.label, input, { required: s.required, optional: !s.required, help: s.help });
        }));
    }

    switchProvider(id) {
      const old = this.p;
      const next = provider(id);
      if (!next) return;
      this.captureAuth();
      const m = this.m;
      const swap = (key, dflt) => {
        if (!m[key].trim() || m[key] === (old[dflt] || '')) m[key] = next[dflt] || '';
      };
      swap('issue_url_template', 'default_issue_url_template');
      swap('create_url_template', 'default_create_url_template');
      swap('key_pattern', 'default_key_pattern');
      if (!m.sample_key || m.sample_key === old.key_example) m.sample_key = next.key_example || '';
      m.provider = id;
      if (!next.auth_types.some((a) => a.id === m.auth_type)) {
        const ex = this.existing;
        m.auth_type = ex && ex.provider === id ? ex.auth_type : (next.auth_types[0] || {}).id;
      }
      this.issueInput.value = m.issue_url_template;
      this.createInput.value = m.create_url_template;
      this.patternInput.value = m.key_pattern;
      this.sampleInput.value = m.sample_key;
      this.renderProviderParts();
    }

    renderTemplate(template, allowed) {
      const p = this.p;
      const typed = this.m.base_url.trim().replace(/\/+$/, '');
      const base = typed || (p.base_url_example || 'https://tracker.example.com').replace(/\/+$/, '');
      const key = this.m.sample_key.trim() || p.key_example || 'KEY-1';
      const unknown = [];
      template.replace(/\{([^}]*)\}/g, (_, name) => {
        if (!allowed.includes(name)) unknown.push('{' + name + '}');
        return '';
      });
      return { url: template.split('{baseUrl}').join(base).split('{key}').join(key), unknown, exampleBase: !typed };
    }

    previewInto(el, template, allowed, emptyText) {
      el.classList.remove('bad');
      if (!template.trim()) {
        replace(el, h('span', {}, emptyText));
        return;
      }
      const r = this.renderTemplate(template.trim(), allowed);
      if (r.unknown.length) {
        el.classList.add('bad');
        replace(el, h('span', {}, 'Unknown placeholder ' + r.unknown.join(', ') + '; use ' + allowed.map((a) => '{' + a + '}').join(' and ') + '.'));
        return;
      }
      replace(el, h('span', {}, 'Preview:'), h('code', { class: 'preview-url' }, r.url),
        r.exampleBase ? h('span', { class: 'faint' }, '(with the example base URL)') : null);
    }

    refreshPreviews() {
      this.previewInto(this.issuePreview, this.m.issue_url_template, ['baseUrl', 'key'],
        'Empty: ' + this.p.name + '’s default link is used' + (this.p.default_issue_url_template ? ' (' + this.p.default_issue_url_template + ').' : '.'));
      this.previewInto(this.createPreview, this.m.create_url_template, ['baseUrl'],
        'Empty: no “create issue” shortcut is offered.');
    }

    refreshMatch() {
      const pattern = this.m.key_pattern.trim();
      const key = this.m.sample_key;
      const set = (cls, ic, text) => {
        this.match.className = 'match ' + cls;
        replace(this.match, ic ? icon(ic) : null, h('span', {}, text));
      };
      if (!pattern) {
        set('neutral', null, 'No pattern: keys are checked only by ' + this.p.name + '’s own key format.');
        return;
      }
      // The server checks with the rules Save applies (a browser's RegExp accepts look-around,
      // which the server refuses); only the latest answer is shown.
      const asked = (this.matchAsked = (this.matchAsked || 0) + 1);
      clearTimeout(this.matchTimer);
      this.matchTimer = setTimeout(async () => {
        let verdict;
        try {
          verdict = await api('POST', '/key-patterns/check', { pattern, key: key || null });
        } catch (e) {
          if (asked === this.matchAsked) set('neutral', null, 'The pattern could not be checked: ' + e.message);
          return;
        }
        if (asked !== this.matchAsked) return;
        if (!verdict.valid) set('no', 'cross', verdict.message);
        else if (!key) set('neutral', null, 'Type a sample key to check the pattern.');
        else if (verdict.matches) set('yes', 'check', '“' + key + '” matches the pattern');
        else set('no', 'cross', '“' + key + '” does not match the pattern');
      }, 150);
    }

    buildCapabilities() {
      const panel = this.panels.capabilities;
      this.createNote = h('div', { class: 'note', id: 'create-requirement' });
      this.capSupport = {};
      const items = CAPABILITIES.map((c) => {
        const id = 'f-cap-' + c.name;
        const input = h('input', { type: 'checkbox', role: 'switch', id, checked: this.m.caps[c.name], 'aria-describedby': id + '-support ' + id + '-text' });
        // Filled by refreshCapabilitySupport: why the provider's plugin cannot do this.
        this.capSupport[c.name] = h('span', { class: 'soon', id: id + '-support' });
        input.addEventListener('change', () => {
          this.m.caps[c.name] = input.checked;
          if (c.name === 'create_issues') this.refreshCreateNote();
        });
        return h('div', { class: 'cap', 'data-field': 'capabilities.' + c.name },
          h('span', { class: 'switch' }, input),
          h('div', { class: 'cap-body' },
            h('label', { for: id }, c.label),
            this.capSupport[c.name],
            h('p', { id: id + '-text' }, c.text),
            c.name === 'create_issues' ? this.createNote : null));
      });
      append(panel, [
        h('p', { class: 'muted' }, 'Capabilities control what TestOrchestrator is permitted to do when communicating with this source. Each can be toggled independently.'),
        h('div', { class: 'cap-list', 'data-field': 'capabilities' }, items),
      ]);
      this.refreshCreateNote();
      this.refreshCapabilitySupport();
    }

    /** Marks the capabilities the chosen provider's plugin does not serve, with the reason
     * `GET /providers` gives, e.g. "not supported by this plugin (contract 1.0)". */
    refreshCapabilitySupport() {
      if (!this.capSupport) return;
      const why = (this.p.capabilities || {}).unsupported || {};
      for (const [name, el] of Object.entries(this.capSupport)) {
        const text = why[name] || '';
        el.hidden = !text;
        el.textContent = text ? text.charAt(0).toUpperCase() + text.slice(1) : '';
        el.parentNode && el.parentNode.parentNode.classList.toggle('future', !!text);
      }
    }

    refreshCreateNote() {
      const hasTemplate = !!this.m.create_url_template.trim();
      const note = this.createNote;
      note.className = 'note' + (!hasTemplate && this.m.caps.create_issues ? ' warn' : '');
      if (hasTemplate) {
        replace(note, 'Uses the create URL template ', h('code', {}, this.m.create_url_template.trim()), '.');
      } else {
        const go = h('a', { href: '#', id: 'goto-create-template' }, 'Add a create URL template');
        go.addEventListener('click', (ev) => {
          ev.preventDefault();
          this.select('source');
          this.createInput.focus();
        });
        replace(note, 'Requires a Create URL template on the SOURCE tab; saving with this on and no template is refused. ', go);
      }
    }

    buildProjects() {
      const panel = this.panels.projects;
      const radio = (value, title, text) => {
        const input = h('input', { type: 'radio', name: 'projects-mode', value, id: 'f-projects-' + value, checked: this.m.mode === value });
        input.addEventListener('change', () => {
          if (input.checked) {
            this.m.mode = value;
            this.pickerField.hidden = value !== 'specific';
            if (value === 'specific') this.clearError(this.pickerField);
          }
        });
        return h('label', { class: 'radio-card', for: 'f-projects-' + value }, input,
          h('span', {}, h('strong', {}, title), h('span', { class: 'muted' }, text)));
      };
      this.filterInput = h('input', { type: 'search', id: 'f-project-filter', placeholder: 'Filter projects' });
      this.filterInput.addEventListener('input', () => this.renderProjectOptions());
      this.filterInput.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') ev.preventDefault();
      });
      this.countEl = h('span', { class: 'picker-count', id: 'projects-count', 'aria-live': 'polite' });
      this.optionsEl = h('ul', { class: 'project-options', id: 'project-options', role: 'group', 'aria-labelledby': 'projects-label' });
      const newName = h('input', { type: 'text', id: 'f-new-project', placeholder: 'New project name', maxlength: '100' });
      const addProject = h('button', { type: 'button', class: 'btn btn-small', id: 'add-project' }, icon('plus'), 'Create');
      const addIt = async () => {
        const name = newName.value.trim();
        if (!name) {
          newName.focus();
          return;
        }
        addProject.disabled = true;
        try {
          const created = await api('POST', '/projects', { name });
          S.projects.push(created);
          S.projects.sort((a, b) => a.name.localeCompare(b.name));
          this.m.ids.add(created.id);
          newName.value = '';
          this.renderProjectOptions();
          this.clearError(this.pickerField);
          toast('Created project “' + created.name + '”.');
        } catch (e) {
          toast('Could not create the project: ' + e.message, 'error');
        } finally {
          addProject.disabled = false;
        }
      };
      addProject.addEventListener('click', addIt);
      newName.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter') {
          ev.preventDefault();
          addIt();
        }
      });
      this.picker = h('div', { class: 'project-picker' },
        h('div', { class: 'picker-head' },
          h('label', { for: 'f-project-filter', class: 'visually-hidden' }, 'Filter projects'),
          this.filterInput, this.countEl),
        this.optionsEl,
        h('div', { class: 'picker-head' },
          h('label', { for: 'f-new-project', class: 'visually-hidden' }, 'New project name'),
          newName, addProject));
      this.pickerField = h('div', { class: 'field', 'data-field': 'projects.ids', hidden: this.m.mode !== 'specific' },
        h('div', { class: 'label', id: 'projects-label' }, 'Projects', h('span', { class: 'req', 'aria-hidden': 'true' }, '*')),
        this.picker,
        h('div', { class: 'help' }, 'At least one project must be selected.'));
      append(panel, [
        h('fieldset', { 'data-field': 'projects' },
          h('legend', {}, 'Which projects can use this source when adding external references?'),
          h('div', { class: 'radio-cards' },
            radio('all', 'All projects', 'Every project in the workspace, including projects created in the future.'),
            radio('specific', 'Specific projects', 'Only the projects you select. At least one is required.'))),
        this.pickerField,
        h('p', { class: 'help' }, 'You can change the assignment at any time. It does not affect existing links; it only controls who can create new links with this source.'),
      ]);
      this.renderProjectOptions();
    }

    renderProjectOptions() {
      const filter = this.filterInput.value.trim().toLowerCase();
      const known = new Set(S.projects.map((p) => p.id));
      const all = S.projects.concat([...this.m.ids].filter((id) => !known.has(id)).map((id) => ({ id, name: id + ' (deleted)' })));
      const shown = all.filter((p) => !filter || p.name.toLowerCase().includes(filter));
      this.countEl.textContent = this.m.ids.size + ' selected';
      if (!all.length) {
        replace(this.optionsEl, h('li', { class: 'picker-empty' }, 'No projects exist yet. Create one below, or make the source available to all projects.'));
        return;
      }
      if (!shown.length) {
        replace(this.optionsEl, h('li', { class: 'picker-empty' }, 'No project matches “' + filter + '”.'));
        return;
      }
      replace(this.optionsEl, ...shown.map((p) => {
        const input = h('input', { type: 'checkbox', value: p.id, id: 'f-project-' + p.id, checked: this.m.ids.has(p.id), 'data-project-name': p.name });
        input.addEventListener('change', () => {
          if (input.checked) this.m.ids.add(p.id);
          else this.m.ids.delete(p.id);
          this.countEl.textContent = this.m.ids.size + ' selected';
        });
        return h('li', {}, h('label', { for: 'f-project-' + p.id }, input, h('span', {}, p.name)));
      }));
    }

    // -- errors

    locate(field) {
      const tries = [field, field.replace(/\[\d+\]$/, ''), field.split('.').slice(0, 2).join('.'), field.split('.')[0]];
      for (const t of tries) {
        const el = this.el.querySelector('[data-field="' + CSS.escape(t) + '"]');
        if (el && !el.closest('[hidden]:not([role="tabpanel"])')) return el;
      }
      return null;
    }

    clearErrors() {
      this.banner.hidden = true;
      replace(this.banner);
      for (const wrap of $$('.has-error', this.el)) this.clearError(wrap);
      for (const dot of $$('.tab-dot', this.el)) dot.remove();
    }

    clearError(wrap) {
      if (!wrap) return;
      wrap.classList.remove('has-error');
      for (const e of $$(':scope > .field-error', wrap)) e.remove();
      for (const c of $$('[aria-invalid]', wrap)) c.removeAttribute('aria-invalid');
      const picker = $('.project-picker', wrap);
      if (picker) picker.classList.remove('invalid');
    }

    clearFieldError(target) {
      const wrap = target && target.closest && target.closest('.has-error');
      if (wrap) this.clearError(wrap);
    }

    // Shows every error of a failed save or test at its field; the first last, so that its
    // tab is selected and its control focused.
    showError(e) {
      const all = e.errors || [e];
      for (const one of all.slice(1).reverse()) this.showOne(one);
      this.showOne(all[0]);
    }

    showOne(e) {
      const wrap = e.field ? this.locate(e.field) : null;
      if (!wrap) {
        this.banner.hidden = false;
        replace(this.banner, icon('alert'), h('span', {}, e.message));
        this.banner.scrollIntoView({ block: 'nearest' });
        return;
      }
      wrap.classList.add('has-error');
      const control = wrap.querySelector('input:not([type="search"]):not(#f-new-project), select') || wrap.querySelector('input');
      const errId = (control && control.id ? control.id : 'field') + '-error';
      const msg = h('div', { class: 'field-error', id: errId, role: 'alert', 'data-error-for': e.field }, icon('alert'), h('span', {}, e.message));
      const help = $(':scope > .help', wrap);
      if (help) wrap.insertBefore(msg, help);
      else wrap.appendChild(msg);
      const panel = wrap.closest('[role="tabpanel"]');
      const tabKey = panel ? panel.id.replace('panel-', '') : this.current;
      this.select(tabKey);
      if (!$('.tab-dot', this.tabs[tabKey])) this.tabs[tabKey].appendChild(h('span', { class: 'tab-dot', title: 'Has an error' }));
      const picker = $('.project-picker', wrap);
      if (picker) picker.classList.add('invalid');
      if (control) {
        control.setAttribute('aria-invalid', 'true');
        const described = (control.getAttribute('aria-describedby') || '').split(' ').filter((x) => x && x !== errId);
        control.setAttribute('aria-describedby', [errId].concat(described).join(' '));
        control.focus({ preventScroll: true });
      }
      wrap.scrollIntoView({ block: 'center' });
    }

    // -- save and test

    body() {
      const m = this.m;
      this.captureAuth();
      const fields = {};
      for (const f of this.auth.fields) {
        const v = (this.values[m.provider + '|' + m.auth_type + '|' + f.name] || '').trim();
        if (v) fields[f.name] = v;
      }
      const settings = {};
      for (const s of this.p.settings || []) {
        const v = (this.settings[m.provider + '|' + s.name] || '').trim();
        if (v) settings[s.name] = v;
      }
      const opt = (v) => (v.trim() ? v.trim() : null);
      return {
        provider: m.provider,
        display_name: m.display_name,
        base_url: m.base_url,
        auth: { type: m.auth_type, fields },
        issue_url_template: opt(m.issue_url_template),
        create_url_template: opt(m.create_url_template),
        key_pattern: opt(m.key_pattern),
        enabled: m.enabled,
        capabilities: Object.assign({}, m.caps),
        network: { ca_bundle_pem: opt(m.ca_bundle_pem), proxy_url: opt(m.proxy_url) },
        projects: m.mode === 'all' ? { mode: 'all' } : { mode: 'specific', ids: S.projects.map((p) => p.id).filter((id) => m.ids.has(id)).concat([...m.ids].filter((id) => !S.projects.some((p) => p.id === id))) },
        settings,
      };
    }

    async save() {
      this.clearErrors();
      const body = this.body();
      const text = this.saveBtn.textContent;
      this.saveBtn.disabled = true;
      this.saveBtn.textContent = 'Saving…';
      try {
        const saved = this.existing
          ? await api('PUT', '/sources/' + encodeURIComponent(this.existing.id), body)
          : await api('POST', '/sources', body);
        toast((this.existing ? 'Saved “' : 'Added “') + saved.display_name + '”.');
        this.dirty = false;
        go('#/sources');
      } catch (e) {
        this.saveBtn.disabled = false;
        this.saveBtn.textContent = text;
        this.showError(e);
      }
    }

    async testDraft(button) {
      this.clearErrors();
      button.disabled = true;
      replace(this.draftResult, h('span', { class: 'test-result running' }, icon('loader', 'spin'), 'Testing…'));
      try {
        // An edit is tested with the stored secrets it leaves out; nothing is saved.
        const path = this.existing ? '/sources/' + encodeURIComponent(this.existing.id) + '/test-edit' : '/sources/test';
        const out = await api('POST', path, this.body());
        replace(this.draftResult, testResultEl({ ok: out.ok, code: out.code, message: out.ok && out.detail ? out.message + ' · ' + out.detail : out.message }));
      } catch (e) {
        replace(this.draftResult);
        this.showError(e);
      } finally {
        button.disabled = false;
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  // Links (what project members see)

  function loadContext() {
    try {
      return JSON.parse(sessionStorage.getItem(CONTEXT_KEY)) || {};
    } catch (_) {
      return {};
    }
  }

  function saveContext(ctx) {
    sessionStorage.setItem(CONTEXT_KEY, JSON.stringify(ctx));
  }

  const SYNC = {
    'not-syncing-disabled': ['not-syncing', 'pause', 'Not syncing — source disabled', 'The source is disabled: this link shows its last known details until an admin enables it again.'],
    'not-syncing-deleted': ['not-syncing', 'warn', 'Not syncing — source deleted', 'The source was deleted: this link keeps its last known details but will not update any more.'],
    'no-details': ['no-details', null, 'No details', 'The source does not read issue details; only the link is kept.'],
  };

  const CATEGORY = { 'to-do': 'To do', 'in-progress': 'In progress', done: 'Done' };

  async function showLinks() {
    setNav('links', 'Links');
    mount(loading('Loading your projects…'));
    try {
      await loadProjects();
    } catch (e) {
      mountError(e, showLinks);
      return;
    }
    const head = pageHead(['Projects', 'External references'], 'Issue links',
      'Link test objects to issues in your trackers and see the issues’ current status at a glance.');
    if (!S.projects.length) {
      mount(head, h('div', { class: 'card empty', id: 'links-no-projects' },
        h('div', { class: 'empty-icon' }, icon('link')),
        h('h2', {}, 'No projects yet'),
        h('p', {}, isAdmin() ? 'Create a project first (in the PROJECTS tab of a source, or through the API).' : 'Your token is not a member of any project.')));
      focusHeading();
      return;
    }
    const view = new LinksView();
    mount(head, view.el);
    focusHeading();
    view.start();
  }

  class LinksView {
    constructor() {
      const ctx = loadContext();
      this.ctx = {
        project: S.projects.some((p) => p.id === ctx.project) ? ctx.project : S.projects[0].id,
        object: ctx.object || '',
      };
      this.sources = [];
      this.build();
    }

    build() {
      this.projectSelect = h('select', { id: 'm-project' }, S.projects.map((p) => h('option', { value: p.id }, p.name)));
      this.projectSelect.value = this.ctx.project;
      this.projectSelect.addEventListener('change', () => {
        this.ctx.project = this.projectSelect.value;
        saveContext(this.ctx);
        this.loadSources();
        this.loadLinks();
      });
      this.objectInput = h('input', { type: 'text', id: 'm-object', class: 'mono', placeholder: 'test-case:TC-42', value: this.ctx.object, spellcheck: 'false', 'aria-describedby': 'm-object-help' });
      const show = h('button', { type: 'submit', class: 'btn', id: 'm-show' }, 'Show links');
      const ctxForm = h('form', { class: 'context-bar', novalidate: true },
        h('div', { class: 'field', 'data-field': 'project' }, h('label', { for: 'm-project' }, 'Project'), this.projectSelect),
        h('div', { class: 'field', 'data-field': 'test_object' },
          h('label', { for: 'm-object' }, 'Test object'),
          this.objectInput,
          h('div', { class: 'help', id: 'm-object-help' }, 'kind:id, e.g. test-case:TC-42. Leave empty to see every link of the project.')),
        show);
      ctxForm.addEventListener('submit', (ev) => {
        ev.preventDefault();
        this.ctx.object = this.objectInput.value.trim();
        saveContext(this.ctx);
        this.loadLinks();
      });

      this.sourceSelect = h('select', { id: 'm-source' });
      this.sourceSelect.addEventListener('change', () => this.sourceChanged());
      this.keyInput = h('input', { type: 'text', id: 'm-key', class: 'mono', spellcheck: 'false', 'aria-describedby': 'm-key-help' });
      this.keyHelp = h('div', { class: 'help', id: 'm-key-help' });
      this.linkBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'm-link' }, icon('link'), 'Link issue');
      this.createLink = h('a', { class: 'btn btn-small', id: 'm-create', target: '_blank', rel: 'noopener noreferrer', hidden: true }, icon('external'), 'Create issue');
      this.noSources = h('p', { class: 'muted', id: 'm-no-sources', hidden: true }, 'No source is enabled for this project. Ask an admin to add or enable one.');
      this.addBanner = h('div', { class: 'banner', role: 'alert', hidden: true });
      this.addRow = h('div', { class: 'add-link' },
          h('div', { class: 'field', 'data-field': 'source_id' }, h('label', { for: 'm-source' }, 'Source'), this.sourceSelect),
          h('div', { class: 'field', 'data-field': 'key' }, h('label', { for: 'm-key' }, 'Issue key'), this.keyInput, this.keyHelp),
          this.linkBtn);
      this.addForm = h('form', { novalidate: true, id: 'm-add' },
        this.addRow,
        this.addBanner,
        h('div', { class: 'add-link-foot' }, this.noSources, this.createLink));
      this.addForm.addEventListener('submit', (ev) => {
        ev.preventDefault();
        this.link();
      });
      this.addForm.addEventListener('input', (ev) => clearFieldErrorIn(ev.target));
      ctxForm.addEventListener('input', (ev) => clearFieldErrorIn(ev.target));

      this.listTitle = h('h2', { id: 'm-links-title' }, 'Links');
      this.count = h('span', { class: 'muted', id: 'm-links-count' });
      this.list = h('ul', { class: 'links', id: 'm-links', 'aria-labelledby': 'm-links-title' });
      this.el = h('div', {},
        h('div', { class: 'card' }, ctxForm),
        h('div', { class: 'card' }, h('div', { class: 'links-head' }, h('h2', {}, 'Link an issue')), this.addForm),
        h('div', { class: 'card' }, h('div', { class: 'links-head' }, this.listTitle, this.count), this.list));
    }

    start() {
      this.loadSources();
      this.loadLinks();
    }

    get project() {
      return this.ctx.project;
    }

    async loadSources() {
      const project = this.project;
      this.sourceSelect.disabled = true;
      let list;
      try {
        list = await api('GET', '/sources?project=' + encodeURIComponent(project));
      } catch (e) {
        toast('Could not load the sources: ' + e.message, 'error');
        list = [];
      }
      if (project !== this.project) return;
      this.sources = list.filter((s) => s.enabled !== false).map((s) => {
        const p = provider(s.provider) || {};
        return {
          id: s.id,
          name: s.display_name,
          provider_name: s.provider_name || p.name || s.provider,
          key_example: s.key_example || p.key_example || '',
          key_hint: s.key_hint || p.key_hint || '',
          create_issues: s.create_issues !== undefined ? s.create_issues : !!(s.capabilities && s.capabilities.create_issues && s.create_url_template),
          add_comments: !!s.add_comments,
        };
      });
      const previous = this.sourceSelect.value;
      replace(this.sourceSelect, ...this.sources.map((s) => h('option', { value: s.id }, s.name + ' · ' + s.provider_name)));
      if (this.sources.some((s) => s.id === previous)) this.sourceSelect.value = previous;
      const none = !this.sources.length;
      this.sourceSelect.disabled = none;
      this.keyInput.disabled = none;
      this.linkBtn.disabled = none;
      this.noSources.hidden = !none;
      this.addRow.hidden = none;
      this.sourceChanged();
      // The "Comment" actions depend on the sources: links shown before they came in get them now.
      if (this.shownLinks) this.renderLinks(this.shownLinks);
    }

    async sourceChanged() {
      const s = this.sources.find((x) => x.id === this.sourceSelect.value);
      this.createLink.hidden = true;
      this.keyInput.placeholder = s ? s.key_example : '';
      this.keyHelp.textContent = s ? s.key_hint : '';
      if (!s || !s.create_issues) return;
      try {
        const r = await api('GET', '/projects/' + encodeURIComponent(this.project) + '/sources/' + encodeURIComponent(s.id) + '/create-url');
        if (this.sourceSelect.value !== s.id || !r || !r.url) return;
        this.createLink.href = r.url;
        replace(this.createLink, icon('external'), 'Create issue in ' + s.name);
        this.createLink.hidden = false;
      } catch (_) {
        this.createLink.hidden = true;
      }
    }

    async loadLinks() {
      const project = this.project;
      const object = this.ctx.object;
      this.listTitle.textContent = object ? 'Links of ' + object : 'All links in ' + projectName(project);
      replace(this.list, h('li', {}, loading('Loading links…')));
      let links;
      try {
        links = await api('GET', '/projects/' + encodeURIComponent(project) + '/links' + (object ? '?test_object=' + encodeURIComponent(object) : ''));
      } catch (e) {
        replace(this.list, h('li', { class: 'empty' }, h('p', {}, e.message)));
        this.count.textContent = '';
        return;
      }
      if (project !== this.project || object !== this.ctx.object) return;
      this.renderLinks(links);
    }

    renderLinks(links) {
      this.shownLinks = links;
      this.count.textContent = plural(links.length, 'link');
      if (!links.length) {
        replace(this.list, h('li', { class: 'empty', id: 'm-links-empty' },
          h('div', { class: 'empty-icon' }, icon('link')),
          h('h2', {}, 'No links yet'),
          h('p', {}, this.ctx.object
            ? 'Link “' + this.ctx.object + '” to an issue above.'
            : 'Choose a test object and link it to an issue above.')));
        return;
      }
      replace(this.list, ...links.map((l) => this.linkItem(l)));
    }

    linkItem(l) {
      const snap = l.snapshot;
      const href = l.url || (snap && snap.web_url);
      const sync = SYNC[l.sync_state];
      const keyEl = href
        ? h('a', { class: 'link-key', href, target: '_blank', rel: 'noopener noreferrer', title: 'Open ' + l.key + ' in ' + l.source_name }, l.key)
        : h('span', { class: 'link-key' }, l.key);
      const meta = h('div', { class: 'link-meta' });
      if (snap) {
        append(meta, [
          h('span', { class: 'status cat-' + snap.status_category, title: 'Status in ' + l.source_name }, snap.status),
          (CATEGORY[snap.status_category] || snap.status_category).toLowerCase() === snap.status.toLowerCase()
            ? null
            : h('span', { class: 'status-category' }, CATEGORY[snap.status_category] || snap.status_category),
          h('span', { class: 'assignee' }, icon('user'), snap.assignee || 'Unassigned'),
          h('span', { class: 'fetched' }, icon('clock'), timeEl(snap.fetched_at, 'fetched ')),
        ]);
      } else {
        meta.appendChild(h('span', { class: 'no-snapshot' }, l.sync_state === 'no-details' ? 'Issue details are not read for this source' : 'No details fetched yet'));
      }
      append(meta, [
        h('span', { class: 'source' }, 'via ' + l.source_name),
        this.ctx.object ? null : h('span', { class: 'test-object-tag' }, l.test_object),
        sync ? h('span', { class: 'chip sync ' + sync[0], title: sync[3] }, sync[1] ? icon(sync[1]) : null, sync[2]) : null,
      ]);
      const refresh = h('button', {
        type: 'button', class: 'icon-btn refresh', title: l.sync_state === 'syncing' ? 'Refresh now' : 'Not syncing',
        'aria-label': 'Refresh ' + l.key, disabled: l.sync_state !== 'syncing',
      }, icon('refresh'));
      const unlink = h('button', { type: 'button', class: 'icon-btn danger unlink', title: 'Remove link', 'aria-label': 'Remove link to ' + l.key }, icon('x'));
      // "Add comments": only on links whose source takes comments.
      const source = (this.sources || []).find((x) => x.id === l.source_id);
      const comment = source && source.add_comments
        ? h('button', { type: 'button', class: 'btn btn-small comment', 'aria-label': 'Comment on ' + l.key }, 'Comment')
        : null;
      if (comment) comment.addEventListener('click', () => this.comment(l, comment));
      const li = h('li', { class: 'link' + (sync && sync[0] === 'not-syncing' ? ' stale' : ''), 'data-link-id': l.id, 'data-key': l.key, 'data-sync-state': l.sync_state },
        h('div', {},
          h('div', { class: 'link-title' }, keyEl, h('span', { class: 'link-summary' }, snap ? snap.title : '')),
          meta,
          l.last_error ? h('div', { class: 'link-error', role: 'status' }, icon('alert'),
            l.last_error.code === 'not-found' ? ' Not found in the tracker (checked ' : ' Last refresh failed ',
            timeEl(l.last_error.at), l.last_error.code === 'not-found' ? '; every sync checks again): ' : ': ',
            l.last_error.message) : null),
        h('div', { class: 'link-actions' }, comment, refresh, unlink));
      refresh.addEventListener('click', async () => {
        refresh.disabled = true;
        replace(refresh, icon('refresh', 'spin'));
        try {
          const fresh = await api('POST', '/projects/' + encodeURIComponent(l.project) + '/links/' + encodeURIComponent(l.id) + '/refresh');
          const next = this.linkItem(fresh);
          li.replaceWith(next);
          $('.refresh', next).focus();
          if (fresh.last_error) toast('Could not refresh ' + l.key + ': ' + fresh.last_error.message, 'error');
        } catch (e) {
          toast('Could not refresh ' + l.key + ': ' + e.message, 'error');
          refresh.disabled = false;
          replace(refresh, icon('refresh'));
        }
      });
      unlink.addEventListener('click', async () => {
        const ok = await confirmDialog('Remove the link to ' + l.key + '?',
          [h('p', {}, 'The issue itself is not changed; only the link from ' + l.test_object + ' is removed.')], 'Remove link');
        if (!ok) return;
        try {
          await api('DELETE', '/projects/' + encodeURIComponent(l.project) + '/links/' + encodeURIComponent(l.id));
          toast('Removed the link to ' + l.key + '.');
          this.loadLinks();
        } catch (e) {
          toast('Could not remove the link: ' + e.message, 'error');
        }
      });
      return li;
    }

    /** Asks for a Markdown comment and posts it on the link's issue. */
    async comment(l, button) {
      const text = h('textarea', { id: 'm-comment', rows: 6, class: 'mono', 'aria-describedby': 'm-comment-help' });
      const body = [
        h('label', { for: 'm-comment' }, 'Comment (Markdown)'),
        text,
        h('p', { class: 'help', id: 'm-comment-help' }, 'Posted to ' + l.source_name + ' as the source’s account, e.g. a test result.'),
      ];
      const answer = confirmDialog('Comment on ' + l.key, body, 'Post comment');
      text.focus();
      if (!(await answer) || !text.value.trim()) return;
      button.disabled = true;
      try {
        const posted = await api('POST', '/projects/' + encodeURIComponent(l.project) + '/links/' + encodeURIComponent(l.id) + '/comments', { body: text.value });
        toast('Comment posted on ' + l.key + (posted.url ? ': ' + posted.url : '.'));
      } catch (e) {
        toast('Could not comment on ' + l.key + ': ' + e.message, 'error');
      } finally {
        button.disabled = false;
        button.focus();
      }
    }

    async link() {
      clearErrorsIn(this.el);
      this.addBanner.hidden = true;
      this.ctx.object = this.objectInput.value.trim();
      saveContext(this.ctx);
      const body = { test_object: this.ctx.object, source_id: this.sourceSelect.value, key: this.keyInput.value.trim() };
      this.linkBtn.disabled = true;
      try {
        const link = await api('POST', '/projects/' + encodeURIComponent(this.project) + '/links', body);
        this.keyInput.value = '';
        toast('Linked ' + link.key + ' to ' + link.test_object + '.');
        await this.loadLinks();
        this.keyInput.focus();
      } catch (e) {
        const wrap = e.field ? locateIn(this.el, e.field) : null;
        if (wrap) fieldError(wrap, e);
        else {
          this.addBanner.hidden = false;
          replace(this.addBanner, icon('alert'), h('span', {}, e.message));
        }
      } finally {
        this.linkBtn.disabled = !this.sources.length;
      }
    }
  }

  // Field errors outside the editor (the links view).
  function locateIn(root, field) {
    for (const t of [field, field.replace(/\[\d+\]$/, ''), field.split('.')[0]]) {
      const el = root.querySelector('[data-field="' + CSS.escape(t) + '"]');
      if (el) return el;
    }
    return null;
  }

  function fieldError(wrap, e) {
    wrap.classList.add('has-error');
    const control = wrap.querySelector('input, select');
    const msg = h('div', { class: 'field-error', role: 'alert', 'data-error-for': e.field, id: (control ? control.id : 'x') + '-error' }, icon('alert'), h('span', {}, e.message));
    const help = $(':scope > .help', wrap);
    if (help) wrap.insertBefore(msg, help);
    else wrap.appendChild(msg);
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      control.setAttribute('aria-describedby', msg.id + (help ? ' ' + help.id : ''));
      control.focus();
    }
  }

  function clearErrorsIn(root) {
    for (const wrap of $$('.has-error', root)) clearWrap(wrap);
  }

  function clearWrap(wrap) {
    wrap.classList.remove('has-error');
    for (const e of $$(':scope > .field-error', wrap)) e.remove();
    for (const c of $$('[aria-invalid]', wrap)) c.removeAttribute('aria-invalid');
  }

  function clearFieldErrorIn(target) {
    const wrap = target && target.closest && target.closest('.has-error');
    if (wrap) clearWrap(wrap);
  }

  // ---------------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', boot);
})();
