"""The demo's outcome: the multiscale model beats the closure model and the under-resolved DNS.

Training the demo takes minutes (docs/evaluation.md, "The demo"), so this test does not
train it again: it checks the demo that the README's first command made,
``pymsde demo --out demo_out`` in the repository root (``.ci/run`` runs that command before
the test suite), or the output folder named by ``PYMSDE_DEMO_OUT``. It reads
``OUT/report/metrics.json`` (the metrics JSON that ``pymsde demo --json`` prints).

It skips, saying why, when there is no demo output or when that output was made with sizes
other than today's :class:`~pymsde.workflows.demo.DemoConfig` defaults (a stale folder).
"""
import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: DemoConfig (and its train config's) fields that the demo command lets users choose; the rest
#: must be the defaults
CHOSEN_ON_COMMAND_LINE = {"seed", "backend", "device"}


def _demo_metrics() -> dict:
    out = Path(os.environ.get("PYMSDE_DEMO_OUT", ROOT / "demo_out"))
    path = out / "report" / "metrics.json"
    if not path.is_file():
        pytest.skip(f"no demo output at {path}: run `pymsde demo --out {out}` first (the README's first "
                    f"command; .ci/run does), or set PYMSDE_DEMO_OUT to a demo's output folder")
    return json.loads(path.read_text())


def test_demo_multiscale_beats_closure_and_dns():
    from pymsde.workflows.demo import DemoConfig

    m = _demo_metrics()
    made_with = m.get("demo_config") or {}
    expected = json.loads(json.dumps(asdict(DemoConfig())))        # tuples -> lists, as in the file
    def flat(d, pre=""):
        return {f"{pre}{k}": v for k, v in d.items() if not isinstance(v, dict)} | \
            {kk: vv for k, v in d.items() if isinstance(v, dict) for kk, vv in flat(v, f"{k}.").items()}

    made, want = flat(made_with), flat(expected)
    stale = sorted(k for k in want if k.split(".")[-1] not in CHOSEN_ON_COMMAND_LINE and made.get(k) != want[k])
    if stale:
        pytest.skip(f"the demo output was made with other DemoConfig values ({', '.join(stale)}); "
                    f"run `pymsde demo --overwrite` again")
    nrmse = m["nrmse"]
    assert set(nrmse) == {"multiscale", "closure", "dns"}
    assert nrmse["multiscale"] < nrmse["closure"], nrmse
    assert nrmse["multiscale"] < nrmse["dns"], nrmse
