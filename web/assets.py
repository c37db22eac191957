"""The dashboard's front-end files: exactly the ones the page loads, from the npm packages package-lock.json pins.

`scripts/setup` installs them with `npm ci`. A deployment without Node (a Procfile platform's Python build)
gets them with `python -m web.assets`, which needs only Python: it takes each pinned package's tarball
from npm's own cache when it is there, otherwise from the npm registry (`NPM_CONFIG_REGISTRY`, default
the public one), checks it against the lockfile's sha512 integrity, and unpacks only the files below into
`web/node_modules/`. `python -m web` does the same at start when they are missing. The browser tests' own
files (TEST_FILES: axe-core, a devDependency, never served) come the same way through `browser_test_file`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

from web.errors import MissingAssets

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
NODE_MODULES = HERE / "node_modules"
LOCKFILE = HERE / "package-lock.json"
# package -> its files that index.html loads (served at /vendor/<package>/<file>); nothing else is served.
PAGE_FILES = {
    "chart.js": ("dist/chart.umd.min.js",),
    "chartjs-chart-matrix": ("dist/chartjs-chart-matrix.min.js",),
    "cally": ("dist/cally.js",),   # the calendar (web/static/js/picker.js); atomico, its one dependency, is inside
}
# package -> files the browser tests load into the page themselves (never served): axe-core's checker.
TEST_FILES = {
    "axe-core": ("axe.min.js",),
}
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
DOWNLOAD_TIMEOUT_SECONDS = 60


def vendor_files() -> list[str]:
    """Every file the page loads from /vendor/, as paths below node_modules."""
    return [f"{package}/{name}" for package, names in PAGE_FILES.items() for name in names]


def missing(root: Path = NODE_MODULES) -> list[str]:
    return [path for path in vendor_files() if not (root / path).is_file()]


def _pinned(package: str) -> tuple[str, str]:
    entry = json.loads(LOCKFILE.read_text())["packages"][f"node_modules/{package}"]
    return entry["version"], entry["integrity"]


def _from_npm_cache(digest: bytes) -> bytes | None:
    hexed = digest.hex()
    cache = Path(os.environ.get("npm_config_cache") or Path.home() / ".npm") / "_cacache" / "content-v2"
    path = cache / "sha512" / hexed[:2] / hexed[2:4] / hexed[4:]
    return path.read_bytes() if path.is_file() else None


def _download(package: str, version: str) -> bytes:
    registry = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry") or DEFAULT_REGISTRY
    url = f"{registry.rstrip('/')}/{package}/-/{package.rsplit('/', 1)[-1]}-{version}.tgz"
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:
        return response.read()


def tarball(package: str) -> bytes:
    """The package's pinned tarball, verified against package-lock.json's integrity."""
    version, integrity = _pinned(package)
    algorithm, _, encoded = integrity.partition("-")
    if algorithm != "sha512":
        raise MissingAssets(f"{LOCKFILE}: {package} has a {algorithm} integrity; expected sha512")
    digest = base64.b64decode(encoded)
    data = _from_npm_cache(digest)
    if data is None or hashlib.sha512(data).digest() != digest:
        try:
            data = _download(package, version)
        except OSError as exc:
            raise MissingAssets(f"cannot download {package} {version} from the npm registry: {exc}") from exc
    if hashlib.sha512(data).digest() != digest:
        raise MissingAssets(f"{package} {version}: the tarball does not match package-lock.json's integrity")
    return data


def install(root: Path = NODE_MODULES) -> list[str]:
    """Unpack the page's files that are missing below `root`; returns what was written."""
    return [written for package, names in PAGE_FILES.items() for written in _unpack(root, package, names)]


def browser_test_file(path: str, root: Path = NODE_MODULES) -> Path:
    """One of TEST_FILES ("axe-core/axe.min.js"), unpacked from its pinned, verified tarball when missing."""
    package, _, name = path.partition("/")
    if name not in TEST_FILES.get(package, ()):
        raise MissingAssets(f"{path} is not one of the browser tests' files ({', '.join(TEST_FILES)})")
    _unpack(root, package, (name,))
    return root / path


def _unpack(root: Path, package: str, names) -> list[str]:
    """The package's files among `names` that are missing below `root`, written from its tarball."""
    written = []
    wanted = [name for name in names if not (root / package / name).is_file()]
    if not wanted:
        return written
    with tarfile.open(fileobj=io.BytesIO(tarball(package)), mode="r:gz") as archive:
        for name in wanted:
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise MissingAssets(f"{package}'s tarball has no {name}")
            target = root / package / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(member.read())
            partial.replace(target)
            written.append(f"{package}/{name}")
    return written


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        written = install()
    except MissingAssets as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"dashboard assets in {NODE_MODULES}: {', '.join(written) or 'all present already'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
