"""Burgers 1-D with the paper's settings (docs/method.md sections 6-8), end to end.

Simulate the data as the paper's code generates it (10 trajectories on 1000 points, split
8/1/1, T = 1, 1001 steps, nu = 5e-4), train the multiscale model (coarse 20, micro 5,
window 128, 10 quadrature points, Adam 1e-3 decayed 0.9 per 1000 steps, 500 epochs) and the
closure model (micro 0) in the same budget, then evaluate both and the under-resolved DNS
on the test trajectory. Published: 1.1 % (multiscale) vs 10.5 % (closure) test nRMSE.

    python examples/burgers1d.py --out runs/burgers1d                 # the full recipe
    python examples/burgers1d.py --out runs/b1 --epochs 20            # shorter
    python examples/burgers1d.py --out runs/b1 --minutes 10 --device cuda

The report lands in OUT/report/report.md; ``--json`` prints the metrics JSON.
"""
from _common import run_example

if __name__ == "__main__":
    raise SystemExit(run_example(case="burgers1d", coarse=(20,), epochs=500, description=__doc__))
