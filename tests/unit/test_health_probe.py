"""The probe doctor and `run` use on a configured Prefect or MLflow server, against a real
local HTTP server answering with each kind of status."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from nightshift.services import health_problem


class Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path == "/api/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/api"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        (200, None),
        # a server that wants credentials the probe does not send (Prefect Cloud, a proxy)
        # still answers: refusing the run would stop a setup that works
        (401, None),
        (403, None),
        (503, "HTTP 503 Service Unavailable"),
        (500, "HTTP 500 Internal Server Error"),
    ],
)
def test_a_server_is_a_problem_only_when_unreachable_or_failing(
    server_url: str, status: int, problem: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Health, "status", status)
    assert health_problem(server_url + "/") == problem  # a trailing slash is the same URL


def test_an_unreachable_server_is_named_with_why() -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), Health)
    port = server.server_port
    server.server_close()  # nothing listens there now
    assert "Connection refused" in health_problem(f"http://127.0.0.1:{port}")
