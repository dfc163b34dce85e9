// Redmine provider plugin, written in JavaScript against the released 1.0 contract
// (plugins/sdk/wit/provider/v1.0), as the Python one is (examples/redmine-py does the same in Python).
//
// Built into a WebAssembly component with componentize-js (see scripts/build-plugins.sh):
//
//   componentize-js --wit plugins/sdk/wit/provider/v1.0 --world-name provider \
//     --disable http --disable fetch-event -o redmine-js.wasm examples/redmine-js/app.js
//
// `--disable http --disable fetch-event` matter: without them the component imports
// `wasi:http`, which the host does not grant (a plugin reaches the network only through the
// contract's `http` import), and it is refused.
//
// Redmine's REST API: `GET /issues/{id}.json` and `GET /users/current.json`, authenticated with
// the `X-Redmine-API-Key` header (the host applies it: this plugin never sees the key). Every
// call runs in a fresh instance: nothing here keeps state between calls.
//
// The bindings follow componentize-js's conventions: an export `tracker` with one camelCase
// method per function, records as objects with camelCase fields, variants as `{tag, val}`,
// enums as strings, a `result` error thrown (and an imported function's error caught as the
// thrown value's `payload`).

import { send } from 'testorchestrator:provider/http@1.0.0';
import { write } from 'testorchestrator:provider/log@1.0.0';

const VERSION = '0.1.0';

// Redmine's default closed statuses, for servers older than 5.1 that do not send `is_closed`.
const DONE_NAMES = new Set(['closed', 'rejected', 'resolved', 'done', 'cancelled', 'canceled']);
const TO_DO_NAMES = new Set(['new', 'open', 'backlog', 'to do']);

/** A provider error, thrown the way componentize-js maps `result::err`. */
function fail(tag, val) {
  throw { tag, val };
}

function template(text, baseUrl, key) {
  let out = text.replaceAll('{baseUrl}', baseUrl.replace(/\/+$/, ''));
  if (key !== undefined) {
    out = out.replaceAll('{key}', encodeURIComponent(key));
  }
  return out;
}

/** `#42`, ` 42 `, `42` and a pasted `.../issues/42` all become `42`. */
function canonical(key) {
  let text = key.trim();
  if (text.includes('/issues/')) {
    text = text.split('/issues/').pop().split('?')[0].split('#')[0].split('.')[0];
  }
  text = text.replace(/^#+/, '').trim();
  if (!/^[0-9]+$/.test(text)) {
    fail('invalid-input', `${JSON.stringify(key.trim())} is not a Redmine issue number: use digits, e.g. 42 or #42`);
  }
  const number = Number(text);
  if (number <= 0 || number >= 2 ** 31) {
    fail('invalid-input', `${JSON.stringify(key.trim())} is out of range`);
  }
  return String(number);
}

/** An authenticated GET; maps transport errors and statuses to provider errors. */
function getJson(url, what) {
  let response;
  try {
    response = send({
      method: 'get',
      url,
      headers: [['accept', 'application/json']],
      body: undefined,
      authenticated: true,
    });
  } catch (e) {
    const error = e && e.payload ? e.payload : e;
    switch (error && error.tag) {
      case 'denied':
        fail('unreachable', `the host refused the request: ${error.val}`);
        break;
      case 'unreachable':
        fail('unreachable', error.val);
        break;
      case 'timeout':
        fail('unreachable', 'Redmine did not answer in time');
        break;
      default:
        fail('provider', `the request failed: ${error && error.tag}`);
    }
  }
  const status = response.status;
  if (status === 401) fail('unauthorized', 'Redmine rejected the API key (HTTP 401)');
  if (status === 403) fail('forbidden', `this account may not read ${what} (HTTP 403)`);
  if (status === 404) fail('not-found', `${what} was not found (HTTP 404)`);
  if (status === 429) {
    let retryAfterSecs = 60;
    for (const [name, value] of response.headers) {
      if (name === 'retry-after' && /^[0-9]+$/.test(value.trim())) {
        retryAfterSecs = Math.max(1, Number(value.trim()));
      }
    }
    fail('rate-limited', { retryAfterSecs, message: 'Redmine asked us to slow down' });
  }
  if (status < 200 || status >= 300) fail('provider', `Redmine answered HTTP ${status} for ${what}`);
  try {
    return JSON.parse(new TextDecoder().decode(response.body));
  } catch {
    fail('provider', `Redmine answered something that is not JSON for ${what}`);
  }
}

function category(status) {
  if (status.is_closed === true) return 'done';
  const name = String(status.name ?? '').trim().toLowerCase();
  if (DONE_NAMES.has(name)) return 'done';
  if (TO_DO_NAMES.has(name)) return 'to-do';
  return 'in-progress';
}

function base(source) {
  return source.baseUrl.replace(/\/+$/, '');
}

export const tracker = {
  describe() {
    return {
      id: 'redmine',
      version: VERSION,
      name: 'Redmine',
      keyHint: 'Issue number, e.g. 42 or #42',
      keyExample: '#42',
      defaultKeyPattern: '^\\d+$',
      defaultIssueUrlTemplate: '{baseUrl}/issues/{key}',
      defaultCreateUrlTemplate: '{baseUrl}/issues/new',
      baseUrlExample: 'https://redmine.example.com',
      authTypes: [
        {
          id: 'api-token',
          label: 'API key',
          fields: [
            {
              name: 'api-key',
              label: 'API key',
              secret: true,
              required: true,
              help: 'My account -> API access key (REST API must be enabled)',
            },
          ],
          scheme: { tag: 'header', val: { name: 'X-Redmine-API-Key', prefix: '', field: 'api-key' } },
        },
        { id: 'none', label: 'None (public)', fields: [], scheme: { tag: 'none' } },
      ],
      settings: [
        {
          name: 'project',
          label: 'Project identifier',
          help: "Optional: the new-issue link opens this project's form",
          kind: 'text',
          required: false,
        },
      ],
      extraOrigins: [],
    };
  },

  normalizeKey(source, key) {
    return canonical(key);
  },

  issueUrl(source, key) {
    return template(source.issueUrlTemplate ?? '{baseUrl}/issues/{key}', source.baseUrl, canonical(key));
  },

  createUrl(source) {
    if (source.createUrlTemplate) return template(source.createUrlTemplate, source.baseUrl);
    const project = (source.settings.find((p) => p.name === 'project')?.value ?? '').trim();
    if (project) {
      return template(`{baseUrl}/projects/${encodeURIComponent(project)}/issues/new`, source.baseUrl);
    }
    return template('{baseUrl}/issues/new', source.baseUrl);
  },

  testConnection(source) {
    if (source.authType === 'none') {
      getJson(`${base(source)}/issues.json?limit=1`, 'the issue list');
      return { account: 'anonymous', detail: 'public access' };
    }
    const user = getJson(`${base(source)}/users/current.json`, 'the current user').user ?? {};
    const name = [user.firstname, user.lastname].filter(Boolean).join(' ').trim();
    const login = user.login ?? '';
    const account = name && login ? `${name} (${login})` : name || login || 'unknown user';
    return { account, detail: user.mail ?? undefined };
  },

  fetchIssue(source, key) {
    const number = canonical(key);
    const issue = getJson(`${base(source)}/issues/${number}.json`, `issue #${number}`).issue;
    if (!issue || typeof issue !== 'object') fail('provider', "Redmine's answer has no issue");
    const status = issue.status ?? {};
    write('debug', `read issue #${number}`);
    return {
      key: number,
      title: String(issue.subject ?? ''),
      status: String(status.name ?? 'unknown'),
      statusCategory: category(status),
      assignee: issue.assigned_to?.name ?? undefined,
      webUrl: tracker.issueUrl(source, number),
    };
  },

  fetchIssues(source, keys) {
    return keys.map((key) => {
      try {
        return { tag: 'ok', val: tracker.fetchIssue(source, key) };
      } catch (e) {
        // Whole-batch failures stop early; per-issue ones stay per issue.
        if (['unauthorized', 'rate-limited', 'unreachable'].includes(e && e.tag)) throw e;
        return { tag: 'err', val: e };
      }
    });
  },
};
