"""Verifiable constraints: IFEval's 25 kinds and more (see base.py)."""

from spar.constraints.base import REGISTRY, SOFT_PREFIX, Constraint, VerifierResult, by_taxonomy, get, is_soft, register, verify
from spar.constraints import ifeval  # noqa: F401  (registers IFEval's 25 kinds)

__all__ = ["REGISTRY", "SOFT_PREFIX", "Constraint", "VerifierResult", "by_taxonomy", "get", "is_soft", "register", "verify"]
