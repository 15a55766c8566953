"""scripts/render_trace.py draws the exported spans of the example agent's run."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import render_trace


def test_the_chart_has_one_bar_per_exported_span_with_the_agents_sums(tmp_path: Path) -> None:
    out = tmp_path / "span-tree.md"
    assert render_trace.main(["--out", str(out), "--latency", "0", "--tool-latency", "0"]) == 0
    bars = [line.split(" : ")[0].strip() for line in out.read_text().splitlines() if " : " in line]
    assert bars == [
        "handle question (internal)",
        "invoke_agent search_agent (internal) 91 in / 24 out $0.00008150",
        "chat gpt-3.5-turbo-0125 (client) 31 in / 9 out $0.00002900",
        "execute_tool search (internal)",
        "chat gpt-3.5-turbo-0125 (client) 60 in / 15 out $0.00005250",
    ]
