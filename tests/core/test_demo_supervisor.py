"""`manage.py demo` supervises its children the way a restart policy would: one that exits is started again."""

from __future__ import annotations

import subprocess
import sys

from apps.core.management.commands.demo import supervise


def test_the_demo_restarts_a_child_that_exits_and_leaves_running_ones_alone():
    sleeper = (sys.executable, "-c", "import time; time.sleep(60)")
    running = subprocess.Popen(sleeper)
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])  # a worker that gave up, say
    dead.wait(timeout=10)
    procs, said = [running, dead], []
    try:
        supervise(procs, {0: sleeper, 1: sleeper}, said.append, rounds=40, poll=0.1)

        assert procs[0] is running and running.poll() is None
        assert procs[1] is not dead and procs[1].poll() is None, "the exited child was started again"
        assert any("exited with 3" in line for line in said)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=10)
