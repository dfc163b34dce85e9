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

  // A tracker's link as an href: http(s) only (the server checks the same; this page does not
  // rely on it), else nothing.
  function webHref(url) {
    return typeof url === 'string' && /^https?:\/\//i.test(url) ? url : null;
  }

  // A route part as text; a malformed escape is taken as it is rather than stopping the page.
  function decodeOr(part) {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  }

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

  // Calls the API; `body` goes as JSON unless `type` names another media type (then as is).
  async function api(method, path, body, type, extraHeaders) {
    const headers = { Authorization: 'Bearer ' + S.token, Accept: 'application/json', ...extraHeaders };
    if (body !== undefined) headers['Content-Type'] = type || 'application/json';
    let res;
    try {
      res = await fetch('/api/v1' + path, {
        method,
        headers,
        body: body === undefined || type ? body : JSON.stringify(body),
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
      ? [['sources', '#/sources', 'Sources'], ['links', '#/links', 'Links'], ['tokens', '#/tokens', 'Tokens'],
        ['audit', '#/audit', 'Audit log'], ['plugins', '#/plugins', 'Plugins']]
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
    } else if (Object.hasOwn(ADMIN_SCREENS, parts[0] || '')) {
      ADMIN_SCREENS[parts[0]]();
    } else if (parts[0] === 'sources' && parts[1] === 'new') {
      showEditor(null);
    } else if (parts[0] === 'sources' && parts[1]) {
      showEditor(decodeOr(parts[1]));
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

  // The Sources tab's search, filters, sort and page (GET /sources does the work on the
  // server), kept while the admin opens an editor and comes back.
  const SOURCES_PAGE_SIZE = 25;
  const NO_FILTERS = { q: '', provider: '', enabled: '', health: '', project: '', sort: 'name', page: 1 };
  S.sourcesQuery = Object.assign({}, NO_FILTERS);

  const filtered = (q) => ['q', 'provider', 'enabled', 'health', 'project'].some((k) => q[k] !== '');

  function sourcesPath(query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== '') params.set(k, v);
    params.set('limit', SOURCES_PAGE_SIZE);
    return '/sources?' + params;
  }

  async function showSources() {
    setNav('sources', 'Sources');
    mount(loading('Loading sources…'));
    let page;
    try {
      page = await api('GET', sourcesPath(S.sourcesQuery));
    } catch (e) {
      mountError(e, showSources);
      return;
    }
    const add = h('a', { class: 'btn btn-primary', href: '#/sources/new', id: 'add-source' }, icon('plus'), 'Add Source');
    const head = pageHead(['Admin', 'External References', 'Sources'], 'Sources',
      'Connections to your issue trackers. Project members link test objects to issues through the sources enabled for their project.',
      [h('a', { class: 'btn', href: '#/sources-as-code', id: 'sources-as-code' }, 'Import / export'),
        page.total || filtered(S.sourcesQuery) ? add : null]);
    if (!page.total && !filtered(S.sourcesQuery)) {
      mount(head, h('div', { class: 'card empty', id: 'sources-empty' },
        h('div', { class: 'empty-icon' }, icon('plug')),
        h('h2', {}, 'No sources yet'),
        h('p', {}, 'Add a source to connect a Jira Cloud site, a GitHub repository, an Azure DevOps project, a Linear workspace, a GitLab project or any other tracker.'),
        add));
      focusHeading();
      return;
    }
    const list = new SourcesList();
    mount(head, list.el);
    list.render(page);
    focusHeading();
  }

  // The filter bar, the table of one page and the pager; a change asks the server again.
  class SourcesList {
    constructor() {
      this.q = S.sourcesQuery;
      this.asked = 0;
      const option = (value, text) => h('option', { value }, text);
      const select = (key, label, options) => {
        const el = h('select', { id: 's-' + key, name: key }, options);
        el.value = this.q[key];
        el.addEventListener('change', () => this.set(key, el.value));
        return h('div', { class: 'field' }, h('label', { for: 's-' + key }, label), el);
      };
      this.search = h('input', { type: 'search', id: 's-q', name: 'q', value: this.q.q, placeholder: 'Name or base URL', autocomplete: 'off', spellcheck: 'false' });
      let timer = null;
      this.search.addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(() => this.set('q', this.search.value.trim()), 250);
      });
      this.clear = h('button', { type: 'button', class: 'btn btn-small', id: 's-clear', onclick: () => this.reset() }, icon('x'), 'Clear filters');
      const bar = h('form', { class: 'filters', id: 'sources-filters', role: 'search', 'aria-label': 'Find sources', novalidate: true, onsubmit: (ev) => ev.preventDefault() },
        h('div', { class: 'field grow' }, h('label', { for: 's-q' }, 'Search'), this.search),
        select('provider', 'Provider', [option('', 'All providers'), S.providers.map((p) => option(p.id, p.name))]),
        select('enabled', 'State', [option('', 'Any state'), option('true', 'Enabled'), option('false', 'Disabled')]),
        select('health', 'Health', [option('', 'Any health'), Object.entries(HEALTH_TEXT).map(([k, v]) => option(k, v))]),
        select('project', 'Project', [option('', 'Any project'), S.projects.map((p) => option(p.id, p.name))]),
        select('sort', 'Sort by', [
          option('name', 'Name, A to Z'), option('-name', 'Name, Z to A'), option('provider', 'Provider'),
          option('health', 'Health, worst first'), option('-updated', 'Recently changed'), option('-created', 'Recently added'),
        ]),
        this.clear);
      this.results = h('div', { id: 'sources-results' });
      this.range = h('p', { class: 'pager-range', id: 'sources-range', role: 'status' });
      this.prev = h('button', { type: 'button', class: 'btn btn-small', id: 'sources-prev', onclick: () => this.turn(-1) }, 'Previous');
      this.next = h('button', { type: 'button', class: 'btn btn-small', id: 'sources-next', onclick: () => this.turn(1) }, 'Next');
      this.where = h('span', { class: 'pager-page', id: 'sources-page' });
      this.buttons = h('div', { class: 'pager-buttons' }, this.prev, this.where, this.next);
      this.pager = h('nav', { class: 'pager', 'aria-label': 'Pages of sources' }, this.range, this.buttons);
      this.el = h('div', {}, h('div', { class: 'card filters-card' }, bar), this.results, this.pager);
    }

    set(key, value) {
      if (this.q[key] === value) return;
      this.q[key] = value;
      this.q.page = 1;
      this.load();
    }

    reset() {
      Object.assign(this.q, NO_FILTERS);
      for (const key of ['q', 'provider', 'enabled', 'health', 'project', 'sort']) $('#s-' + key, this.el).value = this.q[key];
      this.load();
      this.search.focus();
    }

    turn(by) {
      this.q.page = Math.max(1, this.q.page + by);
      this.load(by < 0 ? this.prev : this.next);
    }

    // Asks for the current query; an answer overtaken by a newer question is dropped.
    async load(keepFocusOn) {
      const asked = ++this.asked;
      this.results.setAttribute('aria-busy', 'true');
      let page;
      try {
        page = await api('GET', sourcesPath(this.q));
      } catch (e) {
        if (asked === this.asked && e.status !== 401) replace(this.results, errorState(e, () => this.load()));
        return;
      } finally {
        if (asked === this.asked) this.results.removeAttribute('aria-busy');
      }
      if (asked !== this.asked) return;
      // The last page emptied (a delete): show the page before it.
      if (!page.items.length && page.page > page.pages) {
        this.q.page = page.pages;
        this.load(keepFocusOn);
        return;
      }
      this.render(page);
      if (keepFocusOn) (keepFocusOn.disabled ? (keepFocusOn === this.next ? this.prev : this.next) : keepFocusOn).focus();
    }

    render(page) {
      this.clear.hidden = !filtered(this.q);
      if (!page.items.length) {
        replace(this.results, h('div', { class: 'card empty', id: 'sources-no-match' },
          h('h2', {}, 'No source matches'),
          h('p', {}, 'Change the search or the filters to see more sources.'),
          h('button', { type: 'button', class: 'btn', onclick: () => this.reset() }, 'Clear filters')));
      } else {
        const table = h('table', { class: 'table', id: 'sources' },
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'Provider'),
            h('th', { scope: 'col' }, 'Display name'),
            h('th', { scope: 'col' }, 'Base URL'),
            h('th', { scope: 'col', class: 'col-enabled' }, 'Enabled'),
            h('th', { scope: 'col', class: 'col-test' }, 'Last test'),
            h('th', { scope: 'col', class: 'col-health' }, 'Health'),
            h('th', { scope: 'col', class: 'col-actions' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
          h('tbody', {}, page.items.map(sourceRow)));
        replace(this.results, h('div', { class: 'card table-wrap' }, table));
      }
      const first = (page.page - 1) * page.limit + 1;
      const count = page.total.toLocaleString() + (page.total === 1 ? ' source' : ' sources');
      this.range.textContent = !page.total ? 'No source matches'
        : page.pages === 1 ? count
          : first.toLocaleString() + '–' + (first + page.items.length - 1).toLocaleString() + ' of ' + count;
      this.where.textContent = 'Page ' + page.page + ' of ' + page.pages;
      this.prev.disabled = page.page <= 1;
      this.next.disabled = !page.next_page;
      this.buttons.hidden = page.pages <= 1;
    }
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
      h('td', {}, h('span', { class: 'base-url', title: s.base_url, tabindex: 0 }, s.base_url)),
      h('td', {}, h('label', { class: 'switch' }, toggle, state)),
      h('td', {}, result),
      h('td', {}, health),
      h('td', { class: 'col-actions' }, testBtn, editBtn, delBtn),
    ]);
    return tr;
  }

  async function runTest(s, button, cell, healthCell) {
    const hadFocus = document.activeElement === button;
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
    // Disabled while it ran, the button lost the keyboard focus to <body>: give it back.
    if (hadFocus && (!document.activeElement || document.activeElement === document.body)) button.focus();
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
      this.optionsEl = h('ul', { class: 'project-options', id: 'project-options', 'aria-labelledby': 'projects-label' });
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

  // The members' source picker lists at most SOURCE_PICKS sources and offers a search once a
  // project has more than SOURCE_SEARCH_FROM.
  const SOURCE_PICKS = 50;
  // Links are fetched LINKS_PAGE at a time; "Show more links" fetches the next page.
  const LINKS_PAGE = 50;
  const SOURCE_SEARCH_FROM = 10;

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
      this.sourceSearch = this.buildSourceSearch();
      this.addRow = h('div', { class: 'add-link' },
          h('div', { class: 'field', 'data-field': 'source_id' }, h('label', { for: 'm-source' }, 'Source'), this.sourceSearch, this.sourceSelect, this.sourceHelp),
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
      this.moreLinks = h('button', { type: 'button', class: 'btn', id: 'm-more-links', hidden: true, onclick: () => this.loadLinks(true) });
      this.el = h('div', {},
        h('div', { class: 'card' }, ctxForm),
        h('div', { class: 'card' }, h('div', { class: 'links-head' }, h('h2', {}, 'Link an issue')), this.addForm),
        h('div', { class: 'card' }, h('div', { class: 'links-head' }, this.listTitle, this.count), this.list,
          h('div', { class: 'links-more' }, this.moreLinks)));
    }

    start() {
      this.loadSources();
      this.loadLinks();
    }

    get project() {
      return this.ctx.project;
    }

    // The source picker's search: the server finds the sources (a project may have hundreds),
    // the first SOURCE_PICKS of them fill the list below it.
    buildSourceSearch() {
      const input = h('input', {
        type: 'search', id: 'm-source-q', class: 'picker-search', hidden: true, placeholder: 'Type to find a source',
        autocomplete: 'off', spellcheck: 'false', 'aria-label': 'Find a source', 'aria-controls': 'm-source', 'aria-describedby': 'm-source-help',
      });
      this.sourceHelp = h('div', { class: 'help', id: 'm-source-help', role: 'status' });
      let timer = null;
      input.addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(() => this.loadSources(), 250);
      });
      input.addEventListener('keydown', (ev) => {
        if (ev.key === 'ArrowDown' && !this.sourceSelect.disabled) {
          ev.preventDefault();
          this.sourceSelect.focus();
        }
      });
      return input;
    }

    async loadSources() {
      const project = this.project;
      const q = this.sourceSearch.value.trim();
      this.sourceSelect.disabled = true;
      let list;
      let total = 0;
      try {
        const page = await api('GET', '/sources?project=' + encodeURIComponent(project) + '&limit=' + SOURCE_PICKS + (q ? '&q=' + encodeURIComponent(q) : ''));
        list = page.items;
        total = page.total;
      } catch (e) {
        toast('Could not load the sources: ' + e.message, 'error');
        list = [];
      }
      if (project !== this.project || q !== this.sourceSearch.value.trim()) return;
      // The search shows once there are more sources than fit a short list, or one is typed.
      this.sourceSearch.hidden = !q && total <= SOURCE_SEARCH_FROM;
      this.sourceHelp.textContent = q && !total ? 'No source matches “' + q + '”.'
        : total > list.length ? 'Showing ' + list.length + ' of ' + total.toLocaleString() + ' sources: type to narrow them.' : '';
      this.sourceHelp.hidden = !this.sourceHelp.textContent;
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
      this.noSources.hidden = !none || !!q;
      this.addRow.hidden = none && !q;
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
        if (this.sourceSelect.value !== s.id || !r || !webHref(r.url)) return;
        this.createLink.href = webHref(r.url);
        replace(this.createLink, icon('external'), 'Create issue in ' + s.name);
        this.createLink.hidden = false;
      } catch (_) {
        this.createLink.hidden = true;
      }
    }

    // The first page of links, or with `more` the next one after those shown.
    async loadLinks(more) {
      const project = this.project;
      const object = this.ctx.object;
      const params = new URLSearchParams({ limit: LINKS_PAGE, page: more ? this.linksPage + 1 : 1 });
      if (object) params.set('test_object', object);
      if (!more) {
        this.listTitle.textContent = object ? 'Links of ' + object : 'All links in ' + projectName(project);
        replace(this.list, h('li', {}, loading('Loading links…')));
        this.moreLinks.hidden = true;
      }
      let page;
      try {
        page = await api('GET', '/projects/' + encodeURIComponent(project) + '/links?' + params);
      } catch (e) {
        if (more) {
          toast('Could not load more links: ' + e.message, 'error');
          return;
        }
        replace(this.list, h('li', { class: 'empty' }, h('p', {}, e.message)));
        this.count.textContent = '';
        return;
      }
      if (project !== this.project || object !== this.ctx.object) return;
      this.linksPage = page.page;
      if (more) {
        append(this.list, page.items.map((l) => this.linkItem(l)));
      } else {
        this.renderLinks(page.items);
      }
      this.count.textContent = plural(page.total, 'link');
      const shown = $$(':scope > li.link', this.list).length;
      this.moreLinks.hidden = !page.next_page;
      this.moreLinks.textContent = 'Show more links (' + shown.toLocaleString() + ' of ' + page.total.toLocaleString() + ' shown)';
      // The button goes away on the last page: the focus moves to the last link's key.
      if (more && this.moreLinks.hidden) {
        const keys = $$('.link-key', this.list);
        if (keys.length) keys[keys.length - 1].focus();
      }
    }

    renderLinks(links) {
      this.shownLinks = links;
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
      const href = webHref(l.url || (snap && snap.web_url));
      const sync = SYNC[l.sync_state];
      const tip = issueTip(l);
      const keyEl = href
        ? h('a', { class: 'link-key', href, target: '_blank', rel: 'noopener noreferrer', 'aria-describedby': tip.id }, l.key)
        : h('span', { class: 'link-key', tabindex: 0, 'aria-describedby': tip.id }, l.key);
      // Escape dismisses the details until the key loses the focus (WCAG 1.4.13).
      keyEl.addEventListener('keydown', (ev) => {
        if (ev.key === 'Escape') tip.hidden = true;
      });
      keyEl.addEventListener('blur', () => {
        tip.hidden = false;
      });
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
          h('div', { class: 'link-title' }, keyEl, tip, h('span', { class: 'link-summary' }, snap ? snap.title : '')),
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

  // The issue's details shown while its key has the pointer or the focus: title, status,
  // assignee, how old the link and the details are, and where the key opens.
  function issueTip(l) {
    const snap = l.snapshot;
    const line = (label, ...value) => h('span', { class: 'tip-line' }, h('span', { class: 'tip-label' }, label + ' '), value);
    const category = snap && (CATEGORY[snap.status_category] || snap.status_category);
    return h('span', { class: 'issue-tip', role: 'tooltip', id: 'tip-' + l.id },
      h('strong', { class: 'tip-title' }, snap ? snap.title : l.key),
      snap ? line('Status', snap.status, category && category.toLowerCase() !== snap.status.toLowerCase() ? ' (' + category + ')' : '') : null,
      snap ? line('Assignee', snap.assignee || 'Unassigned') : line('Details', 'not fetched yet'),
      line('Linked', ago(l.created_at), l.created_by ? ' by ' + l.created_by.replace(/ \([^)]*\)$/, '') : ''),
      snap ? line('Fetched', ago(snap.fetched_at)) : null,
      line('Opens in', l.source_name));
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
  // Admin screens besides Sources: API tokens, the audit log, plugins, sources as code.
  // Each is one show* function (the route) and, where it keeps state, one view class.

  const ADMIN_SCREENS = {
    tokens: () => showTokens(),
    audit: () => showAudit(),
    plugins: () => showPlugins(),
    'sources-as-code': () => showSourcesAsCode(),
  };

  // A table with a visually hidden caption; `heads` are the column titles ('' for actions).
  function dataTable(id, caption, heads, body) {
    return h('table', { class: 'table', id },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, heads.map((t) => h('th', { scope: 'col' }, t || h('span', { class: 'visually-hidden' }, 'Actions'))))),
      body);
  }

  // Shows `e` at the field it names inside `root` (data-field), else in `banner`.
  function showErrorIn(root, banner, e) {
    clearErrorsIn(root);
    banner.hidden = true;
    const wrap = e.field ? locateIn(root, e.field) : null;
    if (wrap) {
      fieldError(wrap, e);
    } else {
      banner.hidden = false;
      replace(banner, icon('alert'), h('span', {}, e.message));
    }
  }

  // -- API tokens

  async function showTokens() {
    setNav('tokens', 'API tokens');
    mount(loading('Loading tokens…'));
    let tokens;
    try {
      [tokens] = await Promise.all([api('GET', '/tokens'), loadProjects()]);
    } catch (e) {
      mountError(e, showTokens);
      return;
    }
    const view = new TokensView(tokens);
    mount(pageHead(['Admin', 'API tokens'], 'API tokens',
      'Tokens let people and scripts in: admins manage sources, members link issues in their projects. A token’s value is shown once, when it is created.'),
    view.el);
    focusHeading();
  }

  class TokensView {
    constructor(tokens) {
      this.tokens = tokens;
      this.body = h('tbody');
      this.renderList();
      this.el = h('div', {}, this.buildForm(), h('div', { class: 'card table-wrap' }, dataTable('tokens', 'API tokens', ['Name', 'Role', 'Projects', 'Created', ''], this.body)));
    }

    buildForm() {
      this.name = h('input', { type: 'text', id: 't-name', maxlength: '100', autocomplete: 'off', placeholder: 'e.g. CI pipeline' });
      const radio = (value, text) => h('label', { class: 'choice', for: 't-role-' + value },
        h('input', { type: 'radio', name: 't-role', id: 't-role-' + value, value, checked: value === 'member', onchange: () => this.roleChanged() }), text);
      this.projectList = h('ul', { class: 'project-options', id: 't-projects', 'aria-labelledby': 't-projects-label' },
        S.projects.map((p) => h('li', {}, h('label', { for: 't-project-' + p.id },
          h('input', { type: 'checkbox', id: 't-project-' + p.id, value: p.id }), h('span', {}, p.name)))));
      this.projectsField = h('fieldset', { class: 'field', 'data-field': 'projects' },
        h('legend', { id: 't-projects-label' }, 'Projects'),
        S.projects.length ? h('div', { class: 'project-picker' }, this.projectList)
          : h('p', { class: 'muted' }, 'No project exists yet: create one in a source’s Projects tab first.'),
        h('div', { class: 'help', id: 't-projects-help' }, 'A member token may link issues in these projects only.'));
      this.banner = h('div', { class: 'banner', role: 'alert', hidden: true });
      this.createBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 't-create' }, icon('plus'), 'Create token');
      this.created = h('div', { class: 'created-token', id: 't-created', hidden: true });
      const form = h('form', { class: 'card-pad', id: 't-form', novalidate: true },
        h('h2', {}, 'Create a token'),
        h('div', { class: 'grid2' },
          h('div', { class: 'field', 'data-field': 'name' }, h('label', { for: 't-name' }, 'Name'), this.name,
            h('div', { class: 'help', id: 't-name-help' }, 'Who or what uses it, so you know which to revoke.')),
          h('fieldset', { class: 'field', 'data-field': 'role' }, h('legend', {}, 'Role'),
            h('div', { class: 'choices' }, radio('member', 'Member of projects'), radio('admin', 'Admin')))),
        this.projectsField,
        this.banner,
        this.createBtn);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        this.create();
      });
      form.addEventListener('input', (ev) => clearFieldErrorIn(ev.target));
      return h('div', { class: 'card' }, form, this.created);
    }

    get role() {
      return $('input[name="t-role"]:checked', this.el).value;
    }

    roleChanged() {
      this.projectsField.hidden = this.role === 'admin';
    }

    async create() {
      const body = { name: this.name.value.trim(), role: this.role };
      if (body.role === 'member') body.projects = $$('input:checked', this.projectList).map((c) => c.value);
      this.createBtn.disabled = true;
      try {
        const made = await api('POST', '/tokens', body);
        clearErrorsIn(this.el);
        this.banner.hidden = true;
        this.name.value = '';
        for (const c of $$('input:checked', this.projectList)) c.checked = false;
        this.showCreated(made);
        this.tokens.push(made);
        this.renderList();
      } catch (e) {
        showErrorIn(this.el, this.banner, e);
      } finally {
        this.createBtn.disabled = false;
      }
    }

    // The new token's value, once: copy it now.
    showCreated(made) {
      const value = h('input', { type: 'text', id: 't-value', class: 'mono', readonly: true, value: made.token, 'aria-label': 'The new token', 'aria-describedby': 't-value-help' });
      const copy = h('button', { type: 'button', class: 'btn', id: 't-copy' }, 'Copy');
      copy.addEventListener('click', async () => {
        try {
          await navigator.clipboard.writeText(made.token);
          toast('Copied the token.');
        } catch (_) {
          value.select();
          toast('Select the token and copy it (Ctrl+C).');
        }
      });
      const done = h('button', { type: 'button', class: 'btn btn-ghost', id: 't-done' }, 'Done');
      done.addEventListener('click', () => {
        replace(this.created);
        this.created.hidden = true;
        this.name.focus();
      });
      replace(this.created,
        h('div', { class: 'banner ok', role: 'status' }, icon('check'), h('span', {}, 'Created “' + made.name + '”. Copy its value now: it is not shown again.')),
        h('div', { class: 'inline-row' }, h('div', { class: 'grow' }, value), copy, done),
        h('div', { class: 'help', id: 't-value-help' }, 'Give it to ' + (made.role === 'admin' ? 'the admin' : 'the project member') + ' it is for; they paste it at sign-in or send it as “Authorization: Bearer …”.'));
      this.created.hidden = false;
      value.focus();
      value.select();
    }

    renderList() {
      const rows = this.tokens.slice().sort((a, b) => b.created_at - a.created_at).map((t) => {
        const mine = S.me && t.id === S.me.id;
        const revoke = h('button', { type: 'button', class: 'icon-btn danger revoke', title: 'Revoke', 'aria-label': 'Revoke ' + t.name }, icon('trash'));
        revoke.addEventListener('click', () => this.revoke(t, mine));
        return h('tr', { 'data-token-id': t.id, 'data-name': t.name },
          h('td', {}, h('span', { class: 'source-name' }, t.name), mine ? h('span', { class: 'chip no-details you' }, 'This session') : null),
          h('td', {}, h('span', { class: 'role-tag' }, t.role)),
          h('td', {}, t.role === 'admin' ? 'All (admin)' : t.projects.map(projectName).join(', ')),
          h('td', {}, timeEl(t.created_at)),
          h('td', { class: 'col-actions' }, revoke));
      });
      replace(this.body, rows.length ? rows : h('tr', {}, h('td', { colspan: 5 }, 'No token yet.')));
    }

    async revoke(t, mine) {
      const ok = await confirmDialog('Revoke “' + t.name + '”?',
        [h('p', {}, 'Everything using this token stops working at once. This cannot be undone.'),
          mine ? h('p', { class: 'impact' }, 'It is the token of this session: you will be signed out.') : null].filter(Boolean),
        'Revoke token');
      if (!ok) return;
      try {
        await api('DELETE', '/tokens/' + encodeURIComponent(t.id));
      } catch (e) {
        toast('Could not revoke “' + t.name + '”: ' + e.message, 'error');
        return;
      }
      if (mine) {
        signOut('You revoked the token of this session. Sign in with another one.');
        return;
      }
      toast('Revoked “' + t.name + '”.');
      this.tokens = this.tokens.filter((x) => x.id !== t.id);
      this.renderList();
      this.name.focus();
    }
  }

  // -- Audit log

  const AUDIT_PAGE = 50;

  async function showAudit() {
    setNav('audit', 'Audit log');
    mount(loading('Loading the audit log…'));
    let sources;
    try {
      sources = await api('GET', '/sources?limit=' + SOURCE_PICKS);
    } catch (e) {
      mountError(e, showAudit);
      return;
    }
    const view = new AuditView(sources);
    mount(pageHead(['Admin', 'Audit log'], 'Audit log',
      'Every change admins made: sources, tokens, projects and plugins, newest first. Secret values are never recorded.'),
    view.el);
    focusHeading();
    view.load(false);
  }

  class AuditView {
    constructor(sources) {
      this.names = new Map();
      this.source = h('select', { id: 'a-source' });
      this.fillSources(sources);
      this.source.addEventListener('change', () => this.load(false));
      // Many sources: the server finds them by name or base URL.
      this.sourceSearch = h('input', { type: 'search', id: 'a-source-q', placeholder: 'Name or base URL', autocomplete: 'off', 'aria-controls': 'a-source' });
      let timer = null;
      this.sourceSearch.addEventListener('input', () => {
        clearTimeout(timer);
        timer = setTimeout(() => this.findSources(), 250);
      });
      this.body = h('tbody');
      this.more = h('button', { type: 'button', class: 'btn', id: 'a-more' }, 'Show older changes');
      this.more.addEventListener('click', () => this.load(true));
      this.end = h('p', { class: 'muted', id: 'a-end', tabindex: '-1', hidden: true }, 'That is the beginning of the log.');
      this.count = h('p', { class: 'pager-range', id: 'a-count', role: 'status' });
      this.next = null;
      this.el = h('div', {},
        h('div', { class: 'card filters-card' }, h('div', { class: 'filters' },
          sources.total > sources.items.length ? h('div', { class: 'field' }, h('label', { for: 'a-source-q' }, 'Search sources'), this.sourceSearch) : null,
          h('div', { class: 'field grow' }, h('label', { for: 'a-source' }, 'Source'), this.source))),
        h('div', { class: 'card table-wrap' }, dataTable('audit', 'Audit log', ['When', 'Who', 'What', 'Target', 'Details'], this.body)),
        h('div', { class: 'pager' }, this.count, this.more, this.end));
      this.shown = 0;
    }

    // The Source choices: every change, the chosen source, and `page`'s sources.
    fillSources(page) {
      const chosen = this.source.value;
      for (const s of page.items) this.names.set(s.id, s.display_name);
      const ids = page.items.map((s) => s.id);
      if (chosen && !ids.includes(chosen)) ids.unshift(chosen);
      replace(this.source, h('option', { value: '' }, 'All changes'), ids.map((id) => h('option', { value: id }, this.names.get(id))));
      this.source.value = chosen;
    }

    async findSources() {
      const q = this.sourceSearch.value.trim();
      try {
        const page = await api('GET', '/sources?limit=' + SOURCE_PICKS + (q ? '&q=' + encodeURIComponent(q) : ''));
        if (q === this.sourceSearch.value.trim()) this.fillSources(page);
      } catch (e) {
        if (e.status !== 401) toast('Could not search the sources: ' + e.message, 'error');
      }
    }

    async load(older) {
      const params = new URLSearchParams({ limit: AUDIT_PAGE });
      if (this.source.value) params.set('source', this.source.value);
      if (older && this.next != null) params.set('before', this.next);
      const asked = (this.asked = (this.asked || 0) + 1);
      let page;
      try {
        page = await api('GET', '/audit?' + params);
      } catch (e) {
        if (e.status !== 401) toast('Could not load the audit log: ' + e.message, 'error');
        return;
      }
      if (asked !== this.asked) return;
      if (!older) {
        this.body.replaceChildren();
        this.shown = 0;
      }
      append(this.body, page.events.map((ev) => this.row(ev)));
      this.shown += page.events.length;
      if (!this.shown) replace(this.body, h('tr', {}, h('td', { colspan: 5 }, 'No change recorded yet.')));
      this.next = page.next_before;
      this.count.textContent = plural(this.shown, 'change') + ' shown';
      const last = page.next_before == null;
      const hadFocus = document.activeElement === this.more;
      this.more.hidden = last;
      this.end.hidden = !last || !this.shown;
      if (hadFocus) (last ? this.end : this.more).focus();
    }

    row(ev) {
      const target = this.names.get(ev.target) || ev.details.display_name || ev.target;
      return h('tr', { 'data-seq': ev.seq, 'data-action': ev.action },
        h('td', {}, timeEl(ev.at)),
        h('td', {}, String(ev.who)),
        h('td', {}, h('code', {}, ev.action)),
        h('td', {}, String(target)),
        h('td', { class: 'audit-details' }, auditDetails(ev.details)));
    }
  }

  // An event's details as "name: value" lines (lists joined; objects as JSON).
  function auditDetails(details) {
    if (!details || typeof details !== 'object') return details == null ? '' : String(details);
    return Object.entries(details).map(([k, v]) => h('div', {},
      h('span', { class: 'muted' }, k.replace(/_/g, ' ') + ': '),
      Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ')
        : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)));
  }

  // -- Plugins

  async function showPlugins() {
    setNav('plugins', 'Plugins');
    mount(loading('Loading plugins…'));
    let list;
    try {
      list = await api('GET', '/plugins');
    } catch (e) {
      mountError(e, showPlugins);
      return;
    }
    const view = new PluginsView(list);
    mount(pageHead(['Admin', 'Plugins'], 'Plugins',
      'The provider plugins this service runs (contract ' + list.supported_contracts.join(', ') + '). An upload replaces a provider’s version at once; calls in flight finish on the old one.'),
    view.el);
    focusHeading();
  }

  class PluginsView {
    constructor(list) {
      this.body = h('tbody');
      this.problems = h('div', { class: 'card card-pad', id: 'plugin-problems', hidden: true });
      this.render(list);
      this.id = h('input', { type: 'text', id: 'p-id', class: 'mono', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. jira-cloud', 'aria-describedby': 'p-id-help' });
      this.file = h('input', { type: 'file', id: 'p-file', accept: '.wasm,application/wasm' });
      this.signature = h('input', { type: 'file', id: 'p-signature', accept: '.minisig', 'aria-describedby': 'p-signature-help' });
      this.banner = h('div', { class: 'banner', role: 'alert', hidden: true });
      this.uploadBtn = h('button', { type: 'submit', class: 'btn btn-primary', id: 'p-upload' }, 'Upload');
      const form = h('form', { class: 'card-pad', id: 'p-form', novalidate: true },
        h('h2', {}, 'Upload a plugin'),
        h('div', { class: 'grid2' },
          h('div', { class: 'field', 'data-field': 'id' }, h('label', { for: 'p-id' }, 'Provider id'), this.id,
            h('div', { class: 'help', id: 'p-id-help' }, 'The id the plugin declares; an existing one is replaced by the new version.')),
          h('div', { class: 'field', 'data-field': 'body' }, h('label', { for: 'p-file' }, 'Plugin file (.wasm)'), this.file),
          h('div', { class: 'field', 'data-field': 'X-Plugin-Signature' },
            h('label', { for: 'p-signature' }, 'Signature (.minisig)' + (list.signing.required ? '' : ', optional')), this.signature,
            h('div', { class: 'help', id: 'p-signature-help' }, list.signing.required
              ? 'This service admits only plugins signed by a vendor key it trusts: choose the .minisig the vendor shipped with the plugin.'
              : list.signing.trusted_keys.length
                ? 'The .minisig the vendor shipped with the plugin, if any; it is checked against the trusted vendor keys.'
                : 'The .minisig the vendor shipped with the plugin, if any; this service trusts no vendor key, so it is not checked.'))),
        this.banner,
        this.uploadBtn);
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        this.upload();
      });
      form.addEventListener('input', (ev) => clearFieldErrorIn(ev.target));
      this.el = h('div', {},
        this.problems,
        h('div', { class: 'card table-wrap' }, dataTable('plugins', 'Plugins', ['Provider', 'Version', 'Digest', 'Calls', 'Sources', 'Loaded', ''], this.body)),
        h('div', { class: 'card' }, form));
    }

    render(list) {
      this.problems.hidden = !list.problems.length;
      replace(this.problems, list.problems.length ? [
        h('h2', {}, 'Files not loaded'),
        h('ul', {}, list.problems.map((f) => h('li', { 'data-file': f.file }, h('span', { class: 'mono' }, f.file), ': ' + f.error))),
      ] : []);
      replace(this.body, list.plugins.map((p) => {
        const upload = h('button', { type: 'button', class: 'icon-btn upload', title: 'Upload a new version', 'aria-label': 'Upload a new version of ' + p.name }, icon('refresh'));
        upload.addEventListener('click', () => {
          this.id.value = p.id;
          this.file.focus();
        });
        const remove = h('button', { type: 'button', class: 'icon-btn danger remove', title: 'Remove', 'aria-label': 'Remove ' + p.name }, icon('trash'));
        remove.addEventListener('click', () => this.remove(p));
        const c = p.calls;
        return h('tr', { 'data-plugin-id': p.id, 'data-name': p.name },
          h('td', {}, providerCell(p.id, p.name), h('div', { class: 'faint mono' }, p.id)),
          h('td', {}, h('div', {}, p.version), h('div', { class: 'faint' }, 'contract ' + p.contract),
            h('div', { class: 'faint signer' }, p.signed_by ? 'signed by ' + p.signed_by.key_name + ' (' + p.signed_by.key_id + ')' : 'unsigned')),
          h('td', {}, h('span', { class: 'digest mono', title: 'sha-256 ' + p.digest, tabindex: 0 }, p.digest.slice(0, 12) + '…'),
            h('div', { class: 'faint' }, Math.round(p.size_bytes / 1024).toLocaleString() + ' KiB')),
          h('td', { class: 'calls' }, h('div', {}, c.calls.toLocaleString() + ' calls'),
            h('div', { class: 'faint' }, c.ok.toLocaleString() + ' ok · ' + c.provider_errors.toLocaleString() + ' errors · ' + c.faults.toLocaleString() + ' faults')),
          h('td', {}, plural(p.sources, 'source')),
          h('td', {}, timeEl(p.loaded_at), h('div', { class: 'faint' }, p.origin === 'upload' ? 'uploaded' : 'from the plugins directory')),
          h('td', { class: 'col-actions' }, upload, remove));
      }));
    }

    async reload() {
      const [list] = await Promise.all([api('GET', '/plugins'), loadProviders()]);
      this.render(list);
    }

    async upload() {
      clearErrorsIn(this.el);
      this.banner.hidden = true;
      const id = this.id.value.trim();
      const file = this.file.files[0];
      if (!id) return showErrorIn(this.el, this.banner, { field: 'id', message: 'Enter the provider id the plugin declares.' });
      if (!file) return showErrorIn(this.el, this.banner, { field: 'body', message: 'Choose a .wasm file.' });
      this.uploadBtn.disabled = true;
      try {
        // `wait`: the answer comes once the plugin is compiled and checked (or refused), so the
        // outcome is shown here; scripts may take the job (202) instead.
        const signature = this.signature.files[0];
        const headers = signature ? { 'X-Plugin-Signature': base64(await signature.arrayBuffer()) } : {};
        const out = await api('PUT', '/plugins/' + encodeURIComponent(id) + '?wait=true', file, 'application/wasm', headers);
        toast(!out.changed ? 'That version of “' + id + '” is already serving.'
          : out.previous ? 'Replaced “' + id + '” ' + out.previous.version + ' with ' + out.plugin.version + '.'
            : 'Added “' + id + '” ' + out.plugin.version + '.');
        this.file.value = '';
        this.signature.value = '';
        await this.reload();
      } catch (e) {
        showErrorIn(this.el, this.banner, ['body', 'id', 'X-Plugin-Signature'].includes(e.field) ? e : { message: e.message });
      } finally {
        this.uploadBtn.disabled = false;
      }
    }

    async remove(p) {
      const ok = await confirmDialog('Remove “' + p.name + '”?',
        [h('p', {}, 'The plugin is unloaded and its file deleted from the plugins directory.'),
          p.sources ? h('p', { class: 'impact', id: 'plugin-impact' }, plural(p.sources, 'source') + ' use it: they cannot be tested or synced until a plugin for “' + p.id + '” is loaded again.') : null].filter(Boolean),
        'Remove plugin');
      if (!ok) return;
      try {
        await api('DELETE', '/plugins/' + encodeURIComponent(p.id) + (p.sources ? '?force=true' : ''));
        toast('Removed “' + p.name + '”.');
        await this.reload();
        this.id.focus();
      } catch (e) {
        toast('Could not remove “' + p.name + '”: ' + e.message, 'error');
      }
    }
  }

  /** The base64 of a file's bytes (for the X-Plugin-Signature header). */
  function base64(buffer) {
    let binary = '';
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary);
  }

  // -- Sources as code

  async function showSourcesAsCode() {
    setNav('sources', 'Sources as code');
    const view = new SourcesAsCode();
    mount(pageHead(['Admin', 'External References', 'Sources as code'], 'Sources as code',
      'Every source as one TOML file, to keep in version control or move to another installation. Secrets are never exported: each is a ${SRC_…} reference to an environment variable of the service.'),
    view.el);
    focusHeading();
  }

  class SourcesAsCode {
    constructor() {
      const exportBtn = h('button', { type: 'button', class: 'btn', id: 'x-export' }, icon('external'), 'Download sources.toml');
      exportBtn.addEventListener('click', () => this.download(exportBtn));
      this.file = h('input', { type: 'file', id: 'x-file', accept: '.toml,application/toml,text/plain' });
      this.file.addEventListener('change', () => this.preview());
      this.result = h('div', { id: 'x-preview', 'aria-live': 'polite' });
      this.banner = h('div', { class: 'banner', role: 'alert', hidden: true });
      this.el = h('div', {},
        h('div', { class: 'card card-pad' }, h('h2', {}, 'Export'),
          h('p', { class: 'muted' }, 'All sources with their settings, projects by name.'), h('p', {}, exportBtn)),
        h('div', { class: 'card card-pad' }, h('h2', {}, 'Import'),
          h('p', { class: 'muted' }, 'Creates the sources the file names that do not exist yet and updates the others, by display name; all or nothing. You see what changes before anything is saved.'),
          h('div', { class: 'field', 'data-field': 'file' }, h('label', { for: 'x-file' }, 'Sources file (.toml)'), this.file),
          this.banner,
          this.result));
    }

    async download(button) {
      button.disabled = true;
      try {
        const res = await fetch('/api/v1/sources/export', { headers: { Authorization: 'Bearer ' + S.token }, cache: 'no-store' });
        if (!res.ok) throw new Error('The export failed (HTTP ' + res.status + ').');
        const url = URL.createObjectURL(new Blob([await res.text()], { type: 'application/toml' }));
        const a = h('a', { href: url, download: 'sources.toml', hidden: true });
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 10000);
      } catch (e) {
        toast(e.message, 'error');
      } finally {
        button.disabled = false;
        button.focus();
      }
    }

    async send(dryRun) {
      const text = await this.file.files[0].text();
      return api('POST', '/sources/import' + (dryRun ? '?dry_run=true' : ''), text, 'application/toml');
    }

    // What the chosen file would change, and the button that applies it.
    async preview() {
      this.banner.hidden = true;
      replace(this.result);
      if (!this.file.files.length) return;
      replace(this.result, loading('Checking the file…'));
      let report;
      try {
        report = await this.send(true);
      } catch (e) {
        replace(this.result);
        this.banner.hidden = false;
        replace(this.banner, icon('alert'), h('span', {}, e.message + (e.field ? ' (' + e.field + ')' : '')));
        return;
      }
      const changes = report.changes || {};
      const group = (id, title, names, detail) => names.length
        ? h('section', { class: 'import-group', id }, h('h3', {}, title + ' (' + names.length + ')'),
          h('ul', {}, names.map((n) => h('li', {}, h('strong', {}, n), detail && detail(n) ? h('span', { class: 'muted' }, ' · ' + detail(n)) : null))))
        : null;
      const nothing = !report.created.length && !report.updated.length;
      const apply = h('button', { type: 'button', class: 'btn btn-primary', id: 'x-apply', disabled: nothing }, 'Import');
      apply.addEventListener('click', () => this.apply(apply));
      replace(this.result,
        h('h3', { class: 'section-title' }, 'What the import changes'),
        group('x-created', 'New sources', report.created),
        group('x-updated', 'Changed sources', report.updated, (n) => (changes[n] || []).join(', ')),
        group('x-unchanged', 'Left as they are', report.unchanged),
        nothing ? h('p', { class: 'muted' }, 'The file matches the sources as they are: nothing to import.') : null,
        h('div', { class: 'dialog-actions' }, apply));
    }

    async apply(button) {
      button.disabled = true;
      try {
        const report = await this.send(false);
        toast('Imported: ' + plural(report.created.length, 'source') + ' created, ' + report.updated.length + ' changed.');
        go('#/sources');
      } catch (e) {
        button.disabled = false;
        this.banner.hidden = false;
        replace(this.banner, icon('alert'), h('span', {}, e.message));
      }
    }
  }

  // ---------------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', boot);
})();
