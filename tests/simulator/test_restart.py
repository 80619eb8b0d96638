"""A restarted simulator accepts the tokens it issued before, as Argo CD does with its kept `server.secretkey`.

The simulator is a real `manage.py runsim` process, stopped with SIGTERM and started again on the same port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import requests

MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _runsim(port: int, tmp: Path, secret_dir: Path) -> subprocess.Popen:
    keys = tmp / "keys.json"
    keys.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(MANAGE), "runsim", "--port", str(port), "--apps", "2", "--projects", "1",
         "--secret-dir", str(secret_dir), "--bootstrap-key-file", str(keys)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "RUNSIM_ADMIN_PASSWORD": "admin-pass-1"},
    )  # fmt: skip
    _wait(lambda: keys.exists() or proc.poll() is not None, "runsim to start")
    assert proc.poll() is None, f"runsim exited with {proc.returncode}"
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def _status(url: str, token: str) -> int:
    return requests.get(url + "/api/v1/account", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code


def test_a_restarted_simulator_accepts_the_login_and_api_key_tokens_it_issued_before(tmp_path):
    port, secret_dir = _free_port(), tmp_path / "secrets"
    url = f"http://127.0.0.1:{port}"
    proc = _runsim(port, tmp_path, secret_dir)
    try:
        bootstrap = json.loads((tmp_path / "keys.json").read_text())["sim-1"]["token"]
        login = requests.post(
            url + "/api/v1/session", json={"username": "admin", "password": "admin-pass-1"}, timeout=10
        )
        session = login.json()["token"]
        created = requests.post(
            url + "/api/v1/account/portal/token",
            json={"id": "kept-key", "expiresIn": 3600},
            headers={"Authorization": f"Bearer {bootstrap}"},
            timeout=10,
        )
        api_key = created.json()["token"]
        assert _status(url, session) == 200 and _status(url, api_key) == 200
        stored = secret_dir / "sim-1.json"
        assert stat.S_IMODE(stored.stat().st_mode) == 0o600
        assert session not in stored.read_text() and api_key not in stored.read_text(), "tokens are never kept"
        _stop(proc)
        proc = _runsim(port, tmp_path, secret_dir)
        assert _status(url, session) == 200, "the login session signed before the restart is accepted"
        assert _status(url, api_key) == 200, "the API key recorded before the restart is accepted"
        ids = [
            t["id"]
            for t in requests.get(
                url + "/api/v1/account/portal", headers={"Authorization": f"Bearer {api_key}"}, timeout=10
            ).json()["tokens"]
        ]
        assert "kept-key" in ids
        deleted = requests.delete(
            url + "/api/v1/account/portal/token/kept-key",
            headers={"Authorization": f"Bearer {bootstrap}", "Content-Type": "application/json"},
            timeout=10,
        )
        assert deleted.status_code == 200
        _stop(proc)
        proc = _runsim(port, tmp_path, secret_dir)
        assert _status(url, api_key) == 401, "a key deleted before the restart stays deleted"
    finally:
        _stop(proc)
