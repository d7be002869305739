"""Whole journeys built from the layers below: the demo pipeline (simulate -> train -> evaluate)."""
from pymsde.workflows.demo import DemoConfig, run_demo, run_pipeline

__all__ = ["DemoConfig", "run_demo", "run_pipeline"]
