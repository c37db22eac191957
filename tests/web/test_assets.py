"""web.assets: the page's files from the pinned npm tarballs, with npm's cache or the registry, always
checked against package-lock.json's integrity."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from web import assets
from web.errors import MissingAssets


@pytest.fixture
def registry(monkeypatch, tmp_path) -> Iterator[tuple[dict[str, bytes], dict[str, bytes]]]:
    """A local npm registry serving whatever tarballs the test puts in (path -> bytes), npm's own cache made
    empty; with the pinned tarballs as npm's cache held them (package -> bytes)."""
    served: dict[str, bytes] = {}
    pinned = {package: assets.tarball(package) for package in assets.PAGE_FILES}  # npm's cache, or the registry

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "empty-npm-cache"))
    try:
        yield served, pinned
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_the_page_files_come_from_the_registry_when_npm_has_no_cache(registry, tmp_path):
    served, pinned = registry
    for package, tarball in pinned.items():
        version, _ = assets._pinned(package)
        served[f"/{package}/-/{package}-{version}.tgz"] = tarball
    root = tmp_path / "node_modules"
    assert sorted(assets.install(root)) == sorted(assets.vendor_files())
    for name in assets.vendor_files():
        assert (root / name).read_bytes() == (assets.NODE_MODULES / name).read_bytes()
    assert assets.missing(root) == [] and assets.install(root) == []


def test_a_tarball_that_does_not_match_the_lockfile_is_refused(registry, tmp_path):
    served, _ = registry
    version, _ = assets._pinned("chart.js")
    served[f"/chart.js/-/chart.js-{version}.tgz"] = b"not the pinned tarball"
    with pytest.raises(MissingAssets, match="does not match package-lock.json's integrity"):
        assets.install(tmp_path / "node_modules")
    assert not (tmp_path / "node_modules" / "chart.js").exists()

