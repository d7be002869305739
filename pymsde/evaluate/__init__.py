"""Evaluation: scores (``metrics``), the baselines (``baselines``), the report (``report``),
plotting primitives (``plots``, needs matplotlib), the training-range check (``coverage``) and the
demo pipeline (``demo``).

Main entry points:

- :func:`evaluate_run` -- forecast a split with a trained run, the closure model and the
  under-resolved DNS, score them and write ``report.md`` + PNGs (``pymsde evaluate``).
- :func:`run_demo` -- the whole journey on a reduced Burgers 1-D case (``pymsde demo``).
- :func:`nrmse`, :func:`crps_ensemble`, :func:`spread_skill` -- the scores.
"""
from pymsde.evaluate.baselines import Prediction, dns_prediction, model_prediction
from pymsde.evaluate.metrics import crps_ensemble, nrmse, nrmse_per_time, spread_skill
from pymsde.evaluate.report import (EvaluationResult, MethodScores, evaluate_run, parse_metrics_table,
                                    score_prediction, write_report)

__all__ = ["evaluate_run", "EvaluationResult", "MethodScores", "score_prediction", "write_report",
           "parse_metrics_table", "Prediction", "model_prediction", "dns_prediction",
           "nrmse", "nrmse_per_time", "crps_ensemble", "spread_skill"]
