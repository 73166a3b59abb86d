"""Verifiable constraints: IFEval's 25 kinds and more (see base.py)."""

from spar.constraints.base import REGISTRY, SOFT_PREFIX, Constraint, VerifierResult, get, is_soft, register, verify

__all__ = ["REGISTRY", "SOFT_PREFIX", "Constraint", "VerifierResult", "get", "is_soft", "register", "verify"]
