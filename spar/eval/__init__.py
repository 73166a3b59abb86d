"""Evaluation: IFEval (ifeval.py), the refiner as judge (judgment.py)."""
