"""fan_out: many instances in parallel, one Outcome each, never raising for a bad instance."""

from __future__ import annotations

import socket
import time

from apps.argocd import ArgoCDClient, errors, fan_out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parallel_is_much_faster_than_serial(make_sim):
    sims = [make_sim(name=f"lat-{i}", apps=3, latency_ms=200) for i in range(5)]
    clients = {s.name: ArgoCDClient(s.url, token=s.portal_token(), name=s.name) for s in sims}
    try:
        fan_out(clients, lambda c: c.version())  # warm up connections
        t0 = time.monotonic()
        for c in clients.values():
            c.list_applications()
        serial = time.monotonic() - t0
        t0 = time.monotonic()
        outcomes = fan_out(clients, lambda c: c.list_applications(), deadline=5)
        parallel = time.monotonic() - t0
    finally:
        for c in clients.values():
            c.close()
    assert all(o.ok and len(o.value) == 3 for o in outcomes.values())
    assert serial >= 1.0
    assert parallel < serial / 2.5, (serial, parallel)


def test_one_bad_instance_does_not_spoil_the_rest(make_sim):
    good = make_sim(name="good")
    broken = make_sim(name="broken")
    broken.faults.garbage = True
    clients = {
        "good": ArgoCDClient(good.url, token=good.portal_token(), name="good"),
        "broken": ArgoCDClient(broken.url, token=broken.portal_token(), name="broken", retries=0),
        "gone": ArgoCDClient(f"http://127.0.0.1:{free_port()}", token="a.b.c", name="gone", retries=0),
    }
    out = fan_out(clients, lambda c: c.list_applications())
    assert list(out) == ["good", "broken", "gone"]
    assert out["good"].ok and out["good"].error is None
    assert isinstance(out["broken"].error, errors.BadResponse) and not out["broken"].ok
    assert isinstance(out["gone"].error, errors.Unavailable)
    assert out["gone"].error.instance == "gone"


def test_deadline_turns_slow_instances_into_unavailable(make_sim):
    fast = make_sim(name="fast")
    slow = make_sim(name="slow", latency_ms=2000)
    calls = {
        "fast": lambda: ArgoCDClient(fast.url, token=fast.portal_token(), name="fast").version(),
        "slow": lambda: ArgoCDClient(slow.url, token=slow.portal_token(), name="slow").version(),
    }
    t0 = time.monotonic()
    out = fan_out(calls, deadline=0.5)
    assert time.monotonic() - t0 < 1.0
    assert out["fast"].ok
    assert isinstance(out["slow"].error, errors.Unavailable) and "deadline" in out["slow"].error.message


def test_unexpected_exception_is_captured():
    out = fan_out({"a": lambda: 1, "b": lambda: {}["missing"]})
    assert out["a"].ok and out["a"].value == 1
    assert isinstance(out["b"].error, errors.Internal) and "KeyError" in out["b"].error.message


def test_bounded_workers_and_empty_input():
    assert fan_out({}) == {}
    calls = {i: (lambda: time.sleep(0.1) or 1) for i in range(4)}
    t0 = time.monotonic()
    out = fan_out(calls, max_workers=2, deadline=5)
    assert all(o.ok for o in out.values())
    assert time.monotonic() - t0 >= 0.2  # two waves of two
