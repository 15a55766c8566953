"""The built distributions ship ``py.typed``: a user's ``mypy --strict`` reads our types.

The wheel is built from this checkout (hatchling, no network), installed NOT editable
into a fresh virtual environment, and a tiny user file is type-checked against it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # real processes: `pytest -m "not e2e"` leaves them out

ROOT = Path(__file__).resolve().parents[1]

USER_CODE = """\
from otel_llm_usage import UsageTracker, track_usage


def cost_of_nothing() -> float:
    with track_usage() as usage:
        pass
    tracker: UsageTracker = usage
    return tracker.total_cost
"""

# The same file with a type error that only real type information can find.
WRONG = USER_CODE + "\n\nname: str = cost_of_nothing()\n"


def run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="the test extra installs hatchling, the build backend")
    out = tmp_path_factory.mktemp("dist")
    built = run(sys.executable, "-m", "hatchling", "build", "-d", out, cwd=ROOT)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


def test_wheel_and_sdist_ship_py_typed(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    assert "otel_llm_usage/py.typed" in zipfile.ZipFile(wheel).namelist()
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(name.endswith("/src/otel_llm_usage/py.typed") for name in names), names


def test_mypy_strict_reads_the_installed_wheel(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
        ).stdout.strip()
    )
    # The wheel itself, not editable, by this interpreter's pip into the new environment.
    installed = run(
        sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
        "--target", site, wheel, cwd=tmp_path,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # Our dependencies from the test environment, AFTER the wheel on sys.path (a .pth
    # line adds a folder without running its .pth files, so the editable
    # checkout stays out).
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    where = run(python, "-c", "import otel_llm_usage; print(otel_llm_usage.__file__)", cwd=tmp_path)
    assert where.stdout.strip() == str(site / "otel_llm_usage" / "__init__.py"), where.stderr

    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    mypy = (sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable")
    checked = run(*mypy, python, user.name, cwd=tmp_path)
    assert (checked.returncode, checked.stdout) == (
        0,
        "Success: no issues found in 1 source file\n",
    ), checked.stderr

    user.write_text(WRONG)
    checked = run(*mypy, python, user.name, cwd=tmp_path)
    assert checked.returncode == 1
    assert (
        'user.py:11: error: Incompatible types in assignment (expression has type "float", '
        'variable has type "str")  [assignment]'
    ) in checked.stdout
