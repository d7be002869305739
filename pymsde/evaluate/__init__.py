"""Evaluation: scores (``metrics``: nRMSE, the final paper's relative error, CRPS, spread-skill),
the baselines (``baselines``; DMD and POD-SINDy set up in ``linear_baselines``), scoring and the report
(``report``), plotting primitives (``plots``, needs matplotlib) and the training-range check
(``coverage``). Running a whole evaluation of a run directory is
:func:`pymsde.workflows.evaluation.evaluate_run` (``pymsde evaluate``).
"""
from pymsde.evaluate.baselines import (Prediction, dmd_prediction, dns_prediction, model_prediction,
                                      sindy_prediction)
from pymsde.evaluate.metrics import (crps_ensemble, nrmse, nrmse_per_time, relative_error, relative_error_summary,
                                     spread_skill)
from pymsde.evaluate.report import EvaluationResult, MethodScores, parse_metrics_table, score_prediction
from pymsde.evaluate.writer import write_report

__all__ = ["EvaluationResult", "MethodScores", "score_prediction", "write_report",
           "parse_metrics_table", "Prediction", "model_prediction", "dns_prediction", "dmd_prediction",
           "sindy_prediction", "nrmse", "nrmse_per_time", "relative_error", "relative_error_summary",
           "crps_ensemble", "spread_skill"]
