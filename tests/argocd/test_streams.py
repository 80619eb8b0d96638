"""Logs and the application watch: NDJSON iterators that stop on `last` and let go of the connection."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from apps.argocd import ArgoCDClient, errors


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_logs_stop_on_last(client, some_app):
    name = some_app["metadata"]["name"]
    with client.application_logs(name, tail_lines=5) as entries:
        lines = list(entries)
    assert lines and all("content" in e and "podName" in e for e in lines)
    assert not any(e.get("last") for e in lines)  # the sentinel is not yielded
    assert entries.closed


def app_with_pods(c: ArgoCDClient) -> tuple[str, dict]:
    for app in c.list_applications():
        pods = [n for n in c.get_resource_tree(app["metadata"]["name"])["nodes"] if n["kind"] == "Pod"]
        if pods:
            return app["metadata"]["name"], pods[0]
    raise AssertionError("no app with pods")


def server_streams(sim) -> int:
    """Streams the simulator is still serving: watch subscribers plus busy handler threads (log streams)."""
    counter = getattr(sim.state, "open_streams", None)
    if counter is not None:
        return counter() if callable(counter) else counter
    return sim.state.subscriber_count() + len(sim._httpd.threads)


def test_logs_of_one_pod_and_container(client):
    name, pod = app_with_pods(client)
    manifest = client.get_resource(
        name, namespace=pod["namespace"], resource_name=pod["name"], version="v1", kind="Pod"
    )
    container = manifest["spec"]["containers"][0]["name"]
    with client.application_logs(
        name, pod_name=pod["name"], namespace=pod["namespace"], container=container, tail_lines=3, since_seconds=3600
    ) as entries:
        lines = list(entries)
    assert len(lines) == 3 and {e["podName"] for e in lines} == {pod["name"]}
    needle = lines[-1]["content"].split()[0]
    filtered = list(client.application_logs(name, pod_name=pod["name"], filter=needle, tail_lines=5))
    assert filtered and all(needle in e["content"] for e in filtered)


def test_logs_unknown_app_raises_typed_error(client, some_app):
    with pytest.raises(errors.NotFound):
        list(client.application_logs("no-such-app", project=some_app["spec"]["project"]))
    with pytest.raises(errors.PermissionDenied) as ei:
        list(client.application_logs("no-such-app"))
    assert ei.value.path == "/api/v1/applications/no-such-app/logs"


def test_follow_logs_close_disconnects(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        name, _ = app_with_pods(c)
    assert wait_for(lambda: server_streams(sim) == 0)  # the discovery client's connections are gone
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s", read_timeout=5) as c:
        stream = c.application_logs(name, follow=True, tail_lines=1)
        assert "content" in next(stream)
        next(stream)  # follow: new lines keep coming after the tail
        assert server_streams(sim) == 1
        stream.close()
        assert stream.closed
        assert wait_for(lambda: server_streams(sim) == 0), "server still streaming after close()"


def test_watch_initial_added_then_modified(make_sim):
    sim = make_sim(sync_seconds=0.1)
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        apps = c.list_applications()
        target = apps[0]["metadata"]["name"]
        seen: list[dict] = []
        with c.watch_applications(read_timeout=5) as events:
            for ev in events:
                seen.append(ev)
                if len(seen) == len(apps):
                    c.patch_application(target, {"metadata": {"labels": {"watched": "yes"}}})
                if ev["type"] == "MODIFIED" and ev["application"]["metadata"]["name"] == target:
                    break
        assert {e["type"] for e in seen[: len(apps)]} == {"ADDED"}
        assert seen[-1]["application"]["metadata"]["labels"]["watched"] == "yes"
        assert events.closed


def test_watch_with_fields_and_resource_version(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        apps = c.list_applications()
        with c.watch_applications(fields=["result.type", "result.application.metadata.name"]) as events:
            ev = next(events)
        assert ev["type"] == "ADDED" and set(ev["application"]) == {"metadata"}
        assert set(ev["application"]["metadata"]) == {"name"}

        # From the list's resourceVersion on, nothing old is replayed: the first event is our change.
        done = threading.Event()
        name = apps[1]["metadata"]["name"]

        def change():
            time.sleep(0.3)
            c.patch_application(name, {"metadata": {"labels": {"rv": "1"}}})
            done.set()

        threading.Thread(target=change, daemon=True).start()
        with c.watch_applications(resource_version=apps.resource_version, read_timeout=5) as events:
            ev = next(events)
        assert ev["type"] == "MODIFIED" and ev["application"]["metadata"]["name"] == name
        done.wait(2)


def test_watch_break_closes_connection_on_server(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s", read_timeout=5) as c:
        for _ in c.watch_applications():
            assert sim.state.subscriber_count() == 1
            break
        # The Stream was only referenced by the loop: leaving it frees the connection.
        assert wait_for(lambda: sim.state.subscriber_count() == 0), "server still streaming after break"


def test_watch_idle_longer_than_read_timeout_raises_unavailable(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        apps = c.list_applications()
        with (
            c.watch_applications(resource_version=apps.resource_version, read_timeout=0.3) as events,
            pytest.raises(errors.Unavailable) as ei,
        ):
            next(events)
        assert ei.value.transient and "idle" in ei.value.message


def test_stream_refused_before_first_frame_raises_typed_error(make_sim):
    sim = make_sim()
    sim.faults.fail_rate = 1.0
    with (
        ArgoCDClient(sim.url, token=sim.portal_token(), name="s", retries=0) as c,
        pytest.raises(errors.Unavailable),
    ):
        list(c.application_logs(c.name))


def test_watch_filters_by_project_and_selector(client):
    apps = client.list_applications()
    project = apps[0]["spec"]["project"]
    expected = {a["metadata"]["name"] for a in apps if a["spec"]["project"] == project}
    got: set[str] = set()
    with client.watch_applications(projects=[project], read_timeout=5) as events:
        for ev in events:
            assert ev["application"]["spec"]["project"] == project
            got.add(ev["application"]["metadata"]["name"])
            if got == expected:
                break
    labelled = next(a for a in apps if a["metadata"].get("labels"))
    key, value = next(iter(labelled["metadata"]["labels"].items()))
    with client.watch_applications(selector=f"{key}={value}", read_timeout=5) as events:
        ev = next(events)
    assert ev["application"]["metadata"]["labels"][key] == value


def test_watch_close_from_another_thread_unblocks_the_reader(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        apps = c.list_applications()
        assert wait_for(lambda: server_streams(sim) == 0)
        baseline = sim.state.subscriber_count()
        stream = c.watch_applications(read_timeout=30)
        seen: list[dict] = []
        reader_done = threading.Event()

        def read() -> None:
            for ev in stream:  # blocks in a socket read once the initial ADDED events are consumed
                seen.append(ev)
            reader_done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert wait_for(lambda: len(seen) == len(apps)), "initial events never arrived"
        time.sleep(0.2)  # let the reader block on the idle stream
        assert not reader_done.is_set()

        closer = threading.Thread(target=stream.close, daemon=True)
        started = time.monotonic()
        closer.start()
        closer.join(timeout=1.0)
        assert not closer.is_alive(), "close() from another thread hung"
        assert time.monotonic() - started < 1.0
        assert reader_done.wait(1.0), "the blocked reader did not end after close()"
        assert stream.closed
        assert wait_for(lambda: sim.state.subscriber_count() == baseline), "server still streaming after close()"


def test_async_logs_stop_on_last_and_follow_on_the_event_loop(make_sim):
    sim = make_sim()
    with ArgoCDClient(sim.url, token=sim.portal_token(), name="s") as c:
        name, pod = app_with_pods(c)
        tail = c.application_logs_async(name, pod_name=pod["name"], tail_lines=3)
        live = c.application_logs_async(name, pod_name=pod["name"], tail_lines=1, follow=True, read_timeout=5)

    async def read() -> tuple[list[dict], list[dict]]:
        async with tail:
            ended = [entry async for entry in tail]
        followed = []
        async with live:
            async for entry in live:
                followed.append(entry)
                if len(followed) == 3:  # the tail line, then lines that came after it
                    break
        return ended, followed

    ended, followed = asyncio.run(read())
    assert len(ended) == 3 and not any(e.get("last") for e in ended)
    assert len(followed) == 3 and {e["podName"] for e in followed} == {pod["name"]}
    assert wait_for(lambda: server_streams(sim) == 0), "server still streaming after the async stream closed"


def test_async_logs_raise_typed_errors(client, some_app, make_sim):
    async def open_(stream) -> None:
        async with stream:
            pass

    with pytest.raises(errors.NotFound):
        asyncio.run(open_(client.application_logs_async("no-such-app", project=some_app["spec"]["project"])))
    with pytest.raises(errors.PermissionDenied) as ei:
        asyncio.run(open_(client.application_logs_async("no-such-app")))
    assert ei.value.path == "/api/v1/applications/no-such-app/logs"
    sim = make_sim()
    c = ArgoCDClient(sim.url, token=sim.portal_token(), name="gone")
    stream = c.application_logs_async("any", follow=True)
    sim.stop()
    with pytest.raises(errors.Unavailable) as ei:
        asyncio.run(open_(stream))
    assert ei.value.instance == "gone"
