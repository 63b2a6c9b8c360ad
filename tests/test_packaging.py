"""The wheel ships every subpackage and installs the proofs as partitionnet.derivations, not a top-level package."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # Build from a clean copy: a build/ or *.egg-info left by an editable install would leak stale files in.
    src = tmp_path_factory.mktemp("src") / "partitionnet"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__",
                                                            "docs", "notebooks", "tests", ".hypothesis"))
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
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
