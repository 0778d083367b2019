"""The README's Python API example runs as written, on the core install, and learns something.

The ```python block is read from README.md itself (so the test follows every edit to it) and run
in a subprocess where the packages of every optional extra are hidden (``sys.modules[name] =
None``), as after a plain ``pip install -e .``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from fusionrec.extras import EXTRA_MODULES

REPO = Path(__file__).resolve().parents[1]

HIDDEN = sorted({module for modules in EXTRA_MODULES.values() for module in modules})


def readme_python_block() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(), re.S | re.M)
    assert len(blocks) == 1, f"expected one python block in README.md, found {len(blocks)}"
    return blocks[0]


_RUNNER = """
import json, sys
for name in {hidden!r}:
    sys.modules[name] = None  # as if the extra were not installed
namespace = {{}}
exec(compile({block!r}, "README.md", "exec"), namespace)
from fusionrec.evaluation.evaluate import evaluate
from fusionrec.models.baselines.popularity import Popularity
popularity = evaluate(Popularity().fit(namespace["split"]), namespace["split"], "test", ks=(10,))
print("RESULT " + json.dumps({{"items": namespace["items"].tolist(),
                              "ndcg": namespace["metrics"]["ndcg@10"],
                              "popularity": popularity["ndcg@10"]}}))
"""


def test_readme_example_runs_on_the_core_install_and_beats_popularity():
    script = _RUNNER.format(hidden=HIDDEN, block=readme_python_block())
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(next(line[len("RESULT "):] for line in out.stdout.splitlines()
                             if line.startswith("RESULT ")))
    assert len(result["items"]) == 1 and len(set(result["items"][0])) == 5
    # What the example prints: five raw item ids and the metric line.
    assert re.search(r"\['i\d+'(, 'i\d+'){4}\]", out.stdout)
    assert f"test NDCG@10 {result['ndcg']:.3f}" in out.stdout
    # Five epochs over every source already rank far better than item popularity does.
    assert result["ndcg"] > result["popularity"] + 0.03, result
