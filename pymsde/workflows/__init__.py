"""Whole journeys built from the layers below: evaluating a run against its baselines
(``evaluation``) and the demo pipeline simulate -> train -> evaluate (``demo``)."""
from pymsde.workflows.demo import DemoConfig, run_demo, run_pipeline
from pymsde.workflows.evaluation import evaluate_run

__all__ = ["evaluate_run", "DemoConfig", "run_demo", "run_pipeline"]
