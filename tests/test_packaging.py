"""The wheel ships every subpackage and installs the proofs as partitionnet.derivations, not a top-level package."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                         capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        pytest.skip(f"pip wheel could not build here: {run.stderr.strip()[-300:]}")
    (wheel,) = out.glob("partitionnet-*.whl")
    return zipfile.ZipFile(wheel).namelist()


def test_every_subpackage_is_in_the_wheel(wheel_names):
    for module in ("partitionnet/layers/base.py", "partitionnet/layers/correlation.py", "partitionnet/model.py",
                   "partitionnet/backprop/__init__.py", "partitionnet/derivations/registry.py",
                   "partitionnet/derivations/layers.py"):
        assert module in wheel_names, module


def test_no_generic_top_level_package(wheel_names):
    tops = {name.split("/")[0] for name in wheel_names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"partitionnet"}, tops
