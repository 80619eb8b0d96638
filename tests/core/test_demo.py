"""`make demo`'s setup: the simulators hand over expiring bootstrap keys through a private file, the portal
registers each instance, swaps the bootstrap key for an API key of its own and deletes the bootstrap key; no key
is printed and none reaches the audit log."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apps.argocd import ArgoCDClient
from apps.argocd.errors import ArgoCDError

ROOT = Path(__file__).resolve().parents[2]
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def free_ports(count: int) -> int:
    """The first of `count` consecutive local ports that are free now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports")


@pytest.fixture
def demo_sims(tmp_path):
    """The demo's simulator process, started as the demo starts it; yields (options, key file, its output file)."""
    from apps.core.management.commands.demo import simulator_command, simulator_env

    opts = {"instances": 2, "apps": 4, "projects": 2, "sync_seconds": 1.0, "sim_port": free_ports(2)}
    key_file = tmp_path / "bootstrap.json"
    output = tmp_path / "runsim.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            simulator_command(sys.executable, opts, key_file), cwd=ROOT, env=simulator_env(), stdout=out, stderr=out
        )
    yield opts, key_file, output
    proc.terminate()
    proc.wait(timeout=10)


def logged_in(url: str, token: str) -> bool:
    try:
        with ArgoCDClient(url, token=token, name="probe", retries=0) as client:
            return bool(client.userinfo().get("loggedIn"))
    except ArgoCDError:
        return False


@pytest.mark.django_db
def test_demo_setup_prints_no_key_and_leaves_only_the_portals_own_key_valid(demo_sims, capsys):
    from apps.audit.models import AuditEvent
    from apps.core.management.commands import demo
    from apps.instances.models import Instance
    from apps.instances.services import jwt_claims

    opts, key_file, output = demo_sims
    # Keep a copy of what the simulators handed over, to check afterwards that it no longer opens anything.
    for i in range(opts["instances"]):
        demo.wait_for_port(opts["sim_port"] + i)
    deadline = time.monotonic() + 30
    while not key_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert key_file.stat().st_mode & 0o077 == 0, "the bootstrap key file is readable by others"
    bootstrap = json.loads(key_file.read_text())
    assert len(bootstrap) == 2

    people = demo.register_simulators(opts, key_file, admin_password="a-Secret-1", member_password="m-Secret-2")

    assert not key_file.exists()
    for name, handed in bootstrap.items():
        claims = jwt_claims(handed["token"])
        assert 0 < claims["exp"] - claims["iat"] <= demo.BOOTSTRAP_KEY_TTL  # it would expire anyway
        instance = Instance.objects.get(name=name)
        assert instance.token != handed["token"] and instance.token_id.startswith("portal-")
        assert logged_in(handed["url"], instance.token), f"{name}: the portal's own key does not work"
        assert not logged_in(handed["url"], handed["token"]), f"{name}: the bootstrap key still works"
        deleted = AuditEvent.objects.get(instance=name, action="delete-token", kind="account")
        assert deleted.outcome == "succeeded" and deleted.request["credential_id"] == handed["id"]

    printed = output.read_text() + "".join(capsys.readouterr()) + repr(people)
    assert f"http://127.0.0.1:{opts['sim_port']}" in printed  # what the simulators print was captured
    assert not JWT.search(printed), printed
    secrets = [h["token"] for h in bootstrap.values()] + list(Instance.objects.values_list("token", flat=True))
    for event in AuditEvent.objects.all():
        stored = json.dumps([event.request, event.before, event.after, event.error])
        assert not JWT.search(stored) and not any(s in stored for s in secrets), stored


def test_the_simulators_print_no_api_key(tmp_path):
    port = free_ports(1)
    output = tmp_path / "runsim.out"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "runsim", "--port", str(port), "--apps", "2"],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 30
        while f"127.0.0.1:{port}" not in output.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, output.read_text()
            time.sleep(0.1)
        printed = output.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert f"http://127.0.0.1:{port}" in printed
    assert not JWT.search(printed), printed
