"""benchmarks/overhead.py --peer: the side-by-side table and its failure modes. (The
harness itself runs for minutes in several virtualenvs: it is run by hand, see
benchmarks/README.md; here, what the script makes of its results.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import overhead


def test_render_peer_ratios_and_per_chunk_row() -> None:
    bare = {"invoke": 90.0, "stream_k20": 240.0, "stream_k200": 1880.0}
    ours = {"invoke": 80.0, "stream_k20": 200.0, "stream_k200": 380.0}
    theirs = {"invoke": 168.0, "stream_k20": 400.0, "stream_k200": 1300.0}
    table = overhead.render_peer("traceloop", bare, ours, theirs).splitlines()
    assert table[0] == (
        "| scenario | bare µs | otel_llm_usage added µs | traceloop added µs | traceloop / ours "
        "| ≥ 6x |"
    )
    assert table[2] == "| invoke | 90.0 | 80.0 | 168.0 | 2.1x | FAIL |"
    assert table[3] == "| stream_k20 | 240.0 | 200.0 | 400.0 | 2.0x | FAIL |"
    assert table[4] == "| stream_k200 | 1,880.0 | 380.0 | 1,300.0 | 3.4x | FAIL |"
    # (K=200 - K=20) / 180 of each column: bare 9.1, ours 1.0, traceloop 5.0
    assert table[5] == "| per extra sync chunk | 9.1 | 1.0 | 5.0 | 5.0x | FAIL |"


def test_six_times_less_passes() -> None:
    table = overhead.render_peer("p", {"invoke": 90.0}, {"invoke": 28.0}, {"invoke": 168.0})
    assert table.splitlines()[2] == "| invoke | 90.0 | 28.0 | 168.0 | 6.0x | pass |"


def test_a_scenario_where_we_add_nothing_has_no_ratio() -> None:
    table = overhead.render_peer("p", {"invoke": 90.0}, {"invoke": -1.0}, {"invoke": 5.0})
    assert table.splitlines()[2] == "| invoke | 90.0 | -1.0 | 5.0 | - | pass |"


def test_missing_harness_or_unknown_peer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert overhead.main(["--peer", "traceloop", "--bench-dir", str(tmp_path)]) == 2
    assert "no peer harness at" in capsys.readouterr().err
    (tmp_path / "run_peers.py").write_text("raise SystemExit(0)\n")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "traceloop.py").write_text("")
    (tmp_path / "configs" / "_common.py").write_text("")
    assert overhead.main(["--peer", "nosuch", "--bench-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "unknown peer 'nosuch'; the harness knows: traceloop"


def test_peer_results_read_from_the_harness_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stand-in harness writes the two timing files as run_peers.py does."""
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "traceloop.py").write_text("")

    def phases(bare: float, instrumented: float) -> dict[str, object]:
        return {
            "phases": {
                "bare": {"invoke": {"median_us": bare}},
                "instrumented": {"invoke": {"median_us": instrumented}},
            }
        }

    files = {"otel_llm_usage": phases(90.0, 150.0), "traceloop": phases(91.0, 259.0)}
    (tmp_path / "run_peers.py").write_text(
        "import json, sys\n"
        "results = sys.argv[sys.argv.index('--results') + 1]\n"
        f"for name, data in {json.dumps(files)}.items():\n"
        "    json.dump(data, open(f'{results}/{name}.timing.json', 'w'))\n"
    )
    assert overhead.main(["--peer", "traceloop", "--bench-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| invoke | 90.0 | 60.0 | 168.0 | 2.8x | FAIL |" in out.splitlines()
