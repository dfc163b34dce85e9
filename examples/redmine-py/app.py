"""Redmine provider plugin, written in Python against the same WIT contract as the Rust ones.

Built into a WebAssembly component with componentize-py (see scripts/build-plugins.sh):

    componentize-py -d plugins/sdk/wit/provider/v1 -w provider componentize app -p examples/redmine-py -o redmine-py.wasm

Redmine's REST API: `GET /issues/{id}.json` and `GET /users/current.json`, authenticated with
the `X-Redmine-API-Key` header (the host applies it: this plugin never sees the key).
Every call runs in a fresh instance: nothing here keeps state between calls.
"""

import json

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import http, log
from wit_world.imports.types import (
    AuthField,
    AuthType,
    ConnectionInfo,
    CredentialScheme_Header,
    CredentialScheme_None_,
    HeaderScheme,
    Issue,
    ProviderError_Forbidden,
    ProviderError_InvalidInput,
    ProviderError_NotFound,
    ProviderError_Provider,
    ProviderError_RateLimited,
    ProviderError_Unauthorized,
    ProviderError_Unreachable,
    ProviderInfo,
    RateLimit,
    Setting,
    SettingKind,
    Source,
    StatusCategory,
)

VERSION = "0.1.0"

# Redmine's default closed statuses, for servers older than 5.1 that do not send `is_closed`.
DONE_NAMES = {"closed", "rejected", "resolved", "done", "cancelled", "canceled"}
TO_DO_NAMES = {"new", "open", "backlog", "to do"}


def _fail(error):
    """Raises a provider error the way componentize-py maps `result::err`."""
    raise Err(error)


def _template(template: str, base_url: str, key=None) -> str:
    out = template.replace("{baseUrl}", base_url.rstrip("/"))
    if key is not None:
        out = out.replace("{key}", key)
    return out


def _canonical(key: str) -> str:
    """`#42`, ` 42 `, `42` and a pasted `.../issues/42` all become `42`."""
    text = key.strip()
    if "/issues/" in text:
        text = text.rsplit("/issues/", 1)[1].split("?")[0].split("#")[0].split(".")[0]
    text = text.lstrip("#").strip()
    if not text or not text.isascii() or not text.isdigit():
        _fail(
            ProviderError_InvalidInput(
                f"{key.strip()!r} is not a Redmine issue number: use digits, e.g. 42 or #42"
            )
        )
    number = int(text)
    if number <= 0 or number >= 2**31:
        _fail(ProviderError_InvalidInput(f"{key.strip()!r} is out of range"))
    return str(number)


def _get_json(url: str, what: str):
    """An authenticated GET; maps transport errors and statuses to provider errors."""
    request = http.Request(
        method=http.Method.GET,
        url=url,
        headers=[("accept", "application/json")],
        body=None,
        authenticated=True,
    )
    try:
        response = http.send(request)
    except Err as e:
        error = e.value
        if isinstance(error, http.HttpError_Denied):
            _fail(ProviderError_Unreachable(f"the host refused the request: {error.value}"))
        if isinstance(error, http.HttpError_Unreachable):
            _fail(ProviderError_Unreachable(error.value))
        if isinstance(error, http.HttpError_Timeout):
            _fail(ProviderError_Unreachable("Redmine did not answer in time"))
        _fail(ProviderError_Provider(f"the request failed: {type(error).__name__}"))
    status = response.status
    if status == 401:
        _fail(ProviderError_Unauthorized("Redmine rejected the API key (HTTP 401)"))
    if status == 403:
        _fail(ProviderError_Forbidden(f"this account may not read {what} (HTTP 403)"))
    if status == 404:
        _fail(ProviderError_NotFound(f"{what} was not found (HTTP 404)"))
    if status == 429:
        retry = 60
        for name, value in response.headers:
            if name == "retry-after" and value.strip().isdigit():
                retry = max(1, int(value.strip()))
        _fail(ProviderError_RateLimited(RateLimit(retry, "Redmine asked us to slow down")))
    if status < 200 or status >= 300:
        _fail(ProviderError_Provider(f"Redmine answered HTTP {status} for {what}"))
    try:
        return json.loads(response.body)
    except ValueError:
        _fail(ProviderError_Provider(f"Redmine answered something that is not JSON for {what}"))


def _category(status: dict) -> StatusCategory:
    if status.get("is_closed") is True:
        return StatusCategory.DONE
    name = str(status.get("name", "")).strip().lower()
    if name in DONE_NAMES:
        return StatusCategory.DONE
    if name in TO_DO_NAMES:
        return StatusCategory.TO_DO
    return StatusCategory.IN_PROGRESS


class Tracker(exports.Tracker):
    def describe(self) -> ProviderInfo:
        return ProviderInfo(
            id="redmine",
            version=VERSION,
            name="Redmine",
            key_hint="Issue number, e.g. 42 or #42",
            key_example="#42",
            default_key_pattern=r"^\d+$",
            default_issue_url_template="{baseUrl}/issues/{key}",
            default_create_url_template="{baseUrl}/issues/new",
            base_url_example="https://redmine.example.com",
            auth_types=[
                AuthType(
                    id="api-token",
                    label="API key",
                    fields=[
                        AuthField(
                            name="api-key",
                            label="API key",
                            secret=True,
                            required=True,
                            help="My account -> API access key (REST API must be enabled)",
                        )
                    ],
                    scheme=CredentialScheme_Header(
                        HeaderScheme(name="X-Redmine-API-Key", prefix="", field="api-key")
                    ),
                ),
                AuthType(id="none", label="None (public)", fields=[], scheme=CredentialScheme_None_()),
            ],
            settings=[
                Setting(
                    name="project",
                    label="Project identifier",
                    help="Optional: the new-issue link opens this project's form",
                    kind=SettingKind.TEXT,
                    required=False,
                )
            ],
            extra_origins=[],
        )

    def normalize_key(self, source: Source, key: str) -> str:
        return _canonical(key)

    def issue_url(self, source: Source, key: str) -> str:
        template = source.issue_url_template or "{baseUrl}/issues/{key}"
        return _template(template, source.base_url, _canonical(key))

    def create_url(self, source: Source) -> str:
        if source.create_url_template:
            return _template(source.create_url_template, source.base_url)
        project = next((p.value.strip() for p in source.settings if p.name == "project"), "")
        if project:
            return _template("{baseUrl}/projects/" + project + "/issues/new", source.base_url)
        return _template("{baseUrl}/issues/new", source.base_url)

    def test_connection(self, source: Source) -> ConnectionInfo:
        if source.auth_type == "none":
            _get_json(source.base_url.rstrip("/") + "/issues.json?limit=1", "the issue list")
            return ConnectionInfo(account="anonymous", detail="public access")
        body = _get_json(source.base_url.rstrip("/") + "/users/current.json", "the current user")
        user = body.get("user") or {}
        name = " ".join(x for x in [user.get("firstname"), user.get("lastname")] if x).strip()
        login = user.get("login") or ""
        account = f"{name} ({login})" if name and login else (name or login or "unknown user")
        detail = user.get("mail")
        return ConnectionInfo(account=account, detail=detail)

    def fetch_issue(self, source: Source, key: str) -> Issue:
        number = _canonical(key)
        body = _get_json(
            f"{source.base_url.rstrip('/')}/issues/{number}.json", f"issue #{number}"
        )
        issue = body.get("issue")
        if not isinstance(issue, dict):
            _fail(ProviderError_Provider("Redmine's answer has no issue"))
        status = issue.get("status") or {}
        assignee = (issue.get("assigned_to") or {}).get("name")
        log.write(log.Level.DEBUG, f"read issue #{number}")
        return Issue(
            key=number,
            title=str(issue.get("subject", "")),
            status=str(status.get("name", "unknown")),
            status_category=_category(status),
            assignee=assignee,
            web_url=self.issue_url(source, number),
        )

    def fetch_issues(self, source: Source, keys):
        out = []
        for key in keys:
            try:
                out.append(Ok(self.fetch_issue(source, key)))
            except Err as e:
                # Whole-batch failures stop early; per-issue ones stay per issue.
                if isinstance(
                    e.value,
                    (ProviderError_Unauthorized, ProviderError_RateLimited, ProviderError_Unreachable),
                ):
                    raise
                out.append(Err(e.value))
        return out
