"""Verifiable constraints: IFEval's 25 kinds (ifeval_kinds.py) and more (extra.py, lexical.py, structure.py).

The Constraint base class, the registry and `verify` live in base.py.
"""

from spar.constraints.base import (REGISTRY, SOFT_PREFIX, Constraint, VerifierResult, by_taxonomy, get, is_soft,
                                   register, verify)
from spar.constraints import extra, ifeval_kinds  # noqa: F401  (registering IFEval's 25 kinds and more)
from spar.constraints import lexical, structure  # noqa: F401  (kinds IFEval lacks: layout, words, dates, ...)

__all__ = ["REGISTRY", "SOFT_PREFIX", "Constraint", "VerifierResult", "by_taxonomy", "get", "is_soft", "register",
           "verify"]
