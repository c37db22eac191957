"""`python -m web` as a real process: serves on $PORT (every interface; HOST narrows it), answers /healthz,
stops cleanly on SIGTERM; bad environment values and refused MongoDB credentials stop it with one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_python_m_web_serves_and_stops(tmp_path, mongo_uri, web_config):
    config = tmp_path / "config.toml"
    config.write_text(f'[mongodb]\ndatabase = "{web_config.mongodb.database}"\n')
    port = _free_port()
    env = {**os.environ, "MONGODB_URI": mongo_uri, "PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "web", "--config", str(config)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "python -m web did not answer /healthz"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert b"CLARA Monitor" in response.read()
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0, output
    assert f"dashboard on http://0.0.0.0:{port}/ (every interface)" in output


def test_bad_configuration_is_reported_with_the_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[web]\nport = 70000\n")
    result = subprocess.run([sys.executable, "-m", "web", "--config", str(config)], cwd=REPO, capture_output=True,
                            text=True, timeout=30, env={k: v for k, v in os.environ.items() if k != "PORT"})
    assert result.returncode == 2
    assert "web.port = 70000: expected a TCP port from 1 to 65535" in result.stderr
