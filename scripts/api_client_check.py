"""Drives the API through the Python client generated from /api/v1/openapi.json (package
`api_client`, made by scripts/api-contract.sh): creates a project, a GitHub source against a
stand-in GitHub on 127.0.0.1 (this script's own HTTP server, answering GitHub's REST issue
shape, see ../shared/providers.md section 2), a member token, and a link made with that
token. Every call goes through the generated functions and models: no hand-written HTTP.

Usage: api_client_check.py BASE_URL   (the admin token in $API_ADMIN_TOKEN)
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from api_client import AuthenticatedClient
from api_client.types import UNSET
from api_client.api.default import (
    get_projects_project_links,
    get_sources_id,
    get_tokens,
    patch_sources_id,
    post_projects,
    post_projects_project_links,
    post_sources,
    post_tokens,
)
from api_client.models import (
    AuthInput,
    AuthInputFields,
    CapabilitiesInput,
    ErrorBody,
    LinkInput,
    LinkView,
    PatchSourcesIdJsonBody,
    ProjectAssignmentType1,
    ProjectInput,
    ProjectView,
    Role,
    SourceInput,
    SourceView,
    TokenInput,
    CreatedToken,
)

ISSUE = 42
GITHUB_TOKEN = "ghp_contract_check_token_0123456789"


class GitHub(BaseHTTPRequestHandler):
    """GitHub Enterprise Server's REST issue endpoint, `/api/v3/repos/acme/shop/issues/42`."""

    def do_GET(self):
        if self.path.split("?")[0] != f"/api/v3/repos/acme/shop/issues/{ISSUE}":
            return self.answer(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        if self.headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
            return self.answer(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        web = f"http://127.0.0.1:{self.server.server_port}"
        user = {"login": "monalisa", "id": 1, "type": "User", "site_admin": False}
        self.answer(200, {
            "id": 1042, "node_id": "MDU6SXNzdWUx", "number": ISSUE,
            "url": f"{web}/api/v3/repos/acme/shop/issues/{ISSUE}",
            "html_url": f"{web}/acme/shop/issues/{ISSUE}",
            "state": "open", "state_reason": None, "title": "Checkout fails on empty cart",
            "user": user, "labels": [], "assignee": user, "assignees": [user],
            "locked": False, "comments": 0, "closed_at": None,
            "created_at": "2011-04-22T13:33:48Z", "updated_at": "2011-04-23T10:00:00Z",
            "author_association": "COLLABORATOR",
        })

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("x-ratelimit-limit", "5000")
        self.send_header("x-ratelimit-remaining", "4999")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def expect(answer, kind, what):
    """The parsed answer, which must be a `kind`; else the error the API gave, and exit."""
    if isinstance(answer, kind):
        return answer
    detail = answer.error.message if isinstance(answer, ErrorBody) else repr(answer)
    sys.exit(f"{what}: expected {kind.__name__}, got {detail}")


def main():
    base = sys.argv[1]
    github = ThreadingHTTPServer(("127.0.0.1", 0), GitHub)
    threading.Thread(target=github.serve_forever, daemon=True).start()
    admin = AuthenticatedClient(base_url=base, token=os.environ["API_ADMIN_TOKEN"])

    project = expect(post_projects.sync(client=admin, body=ProjectInput(name="Client check")), ProjectView, "project")
    fields = AuthInputFields.from_dict({"token": GITHUB_TOKEN})
    source = SourceInput(
        provider="github",
        display_name="Client check GitHub",
        base_url=f"http://127.0.0.1:{github.server_port}/acme/shop",
        auth=AuthInput(type_="api-token", fields=fields),
        capabilities=CapabilitiesInput(read_issue_details=True),
        projects=ProjectAssignmentType1(mode="specific", ids=[project.id]),
    )
    source = expect(post_sources.sync(client=admin, body=source), SourceView, "source")
    assert "token" in source.secrets_set and GITHUB_TOKEN not in json.dumps(source.to_dict())

    token = TokenInput(name="Client check member", role=Role.MEMBER, projects=[project.id])
    member_token = expect(post_tokens.sync(client=admin, body=token), CreatedToken, "token")
    member = AuthenticatedClient(base_url=base, token=member_token.token)

    link = LinkInput(test_object="test-case:TC-7", source_id=source.id, key=f"#{ISSUE}")
    link = expect(post_projects_project_links.sync(project.id, client=member, body=link), LinkView, "link")
    assert link.key == str(ISSUE), link.key
    assert link.snapshot and link.snapshot.title == "Checkout fails on empty cart", link.to_dict()

    listed = get_projects_project_links.sync(project.id, client=member)
    items = listed if isinstance(listed, list) else getattr(listed, "items", None)
    assert items and [l.id for l in items] == [link.id], listed
    # A refusal comes back as the typed error.
    again = post_projects_project_links.sync(project.id, client=member, body=LinkInput(
        test_object="test-case:TC-7", source_id=source.id, key=f"#{ISSUE}"))
    assert isinstance(again, ErrorBody) and again.error.field == "key", again
    # A merge patch with the source's ETag as If-Match; the same ETag again is stale (412).
    etag = get_sources_id.sync_detailed(source.id, client=admin).headers["etag"]
    patch = PatchSourcesIdJsonBody.from_dict({"display_name": "Client check source, patched"})
    patched = patch_sources_id.sync_detailed(source.id, client=admin, body=patch, if_match=etag)
    assert patched.status_code == 200 and isinstance(patched.parsed, SourceView), patched
    assert patched.parsed.display_name == "Client check source, patched", patched.parsed
    assert patched.headers["etag"] != etag, patched.headers
    stale = patch_sources_id.sync(source.id, client=admin, body=patch, if_match=etag)
    assert isinstance(stale, ErrorBody) and stale.error.code == "precondition-failed", stale
    # A list walked by cursor, one token a page.
    seen, cursor = [], None
    while True:
        page = get_tokens.sync(client=admin, limit=1, cursor=cursor if cursor else UNSET)
        assert not isinstance(page, (list, ErrorBody)), page
        seen += [t.id for t in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) >= 2 and len(set(seen)) == len(seen) and member_token.id in seen, seen
    print("generated client: project, source, member token, link, merge patch and cursor paging through the API")


if __name__ == "__main__":
    main()
