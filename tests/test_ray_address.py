"""An unreachable ``--ray-address`` fails within seconds with one clear line (issue 12, finding 7);
``ray.init`` alone retries a dead address for ever."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import tiny_encoder

# CI installs the dev extra, which includes Ray: there a missing Ray is an error, not a skip.
if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray")

SRC = Path(__file__).resolve().parents[1] / "src"
# The promise is 30 s; the subprocess is killed then, so a hang fails the test, never blocks it.
DEADLINE_S = 30
# The CLI in a fresh process. torch and Ray are imported before "ready": the 30 s are for the
# connection, not for importing libraries on a loaded machine.
CLI = """
import sys
import ray
import xstilts.pipelines.executor_ray, xstilts.pipelines.plan
from xstilts.cli import app
print("ready", flush=True)
app(sys.argv[1:], prog_name="xstilts")
"""


def _closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_ray_address_fails_fast_with_one_line(data_root: Path, tmp_path: Path) -> None:
    raw = {
        "name": "ray-dead",
        "data_dir": str(data_root),
        "output_dir": str(tmp_path / "out"),
        "encoder": tiny_encoder(300, ["pawsx"], 60, hidden=16, layers=1),
        "intermediate": ["none"],
        "targets": ["pawsx"],
        "train": {"max_steps": 1, "max_train_examples": 4},
    }  # fmt: skip
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(raw))
    address = f"127.0.0.1:{_closed_port()}"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-c", CLI, "run", str(config), "--executor", "ray",
           "--ray-address", address, "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        _, stderr = proc.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"xstilts run --ray-address {address} still waiting after {DEADLINE_S} s")
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 2, stderr
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith(
        f"error: [--ray-address]: cannot join the Ray cluster at '{address}': cannot connect"
    )
    assert "Connection refused" in lines[0] and "ray start --head" in lines[0]
    assert not (tmp_path / "out" / "stages").exists()  # nothing was started
