"""What a verifiable constraint is, and the registry that holds them all.

A constraint kind is identified by an id such as `punctuation:no_comma`
(IFEval's 25 ids keep IFEval's names) and knows three things:

* `describe(kwargs)`  -> the instruction text that asks for it;
* `evaluate(response, kwargs)` -> (ok, reason): whether the response
  satisfies it and, when not, why (the refiner's feedback);
* `sample_kwargs(rng)` -> valid kwargs, for instruction synthesis.

`check` (ok alone) and `explain` (the reason, None when it passes) are read
off `evaluate`, so the verdict and its reason come from one computation and
cannot disagree.

`taxonomy` places the kind in SPaR's taxonomy as "Class/kind", e.g.
"Format/punctuation" or "Content/keyword".

Ids with the prefix `soft:` are not in the registry: they name constraints
only an LLM can judge (style, sentiment, situation).
"""

from __future__ import annotations

import difflib
import random
from dataclasses import dataclass, field
from typing import Any

SOFT_PREFIX = "soft:"

REGISTRY: dict[str, "Constraint"] = {}


class Constraint:
    id: str = ""
    taxonomy: str = ""  # "Format/length", "Content/keyword", "General/language", ...
    params: dict[str, Any] = {}  # kwarg name -> type (or tuple of types / allowed values tuple)

    def validate(self, kwargs: dict[str, Any] | None) -> dict[str, Any]:
        """The kwargs without nulls; a missing or ill-typed one raises ValueError naming it."""
        kwargs = {k: v for k, v in (kwargs or {}).items() if v is not None}  # the hub copy pads with null
        for name, kind in self.params.items():
            if name not in kwargs:
                raise ValueError(f"constraint {self.id!r} needs kwarg {name!r} ({_kind_name(kind)}); "
                                 f"got {sorted(kwargs)}")
            value = kwargs[name]
            if isinstance(kind, list):  # allowed values
                if value not in kind:
                    raise ValueError(f"constraint {self.id!r}: {name}={value!r} is not one of {kind}")
            elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"constraint {self.id!r}: {name}={value!r} should be {_kind_name(kind)}")
        unknown = sorted(set(kwargs) - set(self.params))
        if unknown:
            raise ValueError(f"constraint {self.id!r} takes {sorted(self.params) or 'no kwargs'}; unknown {unknown}")
        return kwargs

    def describe(self, kwargs: dict[str, Any]) -> str:
        raise NotImplementedError

    def evaluate(self, response: str, kwargs: dict[str, Any]) -> tuple[bool, str | None]:
        """(ok, reason): True when `response` satisfies the constraint; else False and a short reason why.

        The reason is read only when ok is False, so a kind may compute it
        either way (`return n >= k, f"it has {n}; it needs {k}"`).
        """
        raise NotImplementedError

    def check(self, response: str, kwargs: dict[str, Any]) -> bool:
        """True when `response` satisfies the constraint."""
        return self.evaluate(response, kwargs)[0]

    def explain(self, response: str, kwargs: dict[str, Any]) -> str | None:
        """A short reason why `response` fails, or None when it passes."""
        ok, reason = self.evaluate(response, kwargs)
        return None if ok else reason

    def sample_kwargs(self, rng: random.Random, prompt: str = "") -> dict[str, Any]:
        """Valid kwargs drawn from `rng`; `prompt` is the task, for kinds that quote it."""
        raise NotImplementedError


def _kind_name(kind: Any) -> str:
    if isinstance(kind, list):
        return f"one of {kind}"
    if isinstance(kind, tuple):
        return " or ".join(k.__name__ for k in kind)
    return kind.__name__


def register(cls: type[Constraint]) -> type[Constraint]:
    """Class decorator: add one instance of `cls` to the registry under `cls.id`."""
    if cls.id in REGISTRY:
        raise ValueError(f"constraint id {cls.id!r} registered twice")
    REGISTRY[cls.id] = cls()
    return cls


def get(constraint_id: str) -> Constraint:
    """The constraint with this id; an unknown id names the nearest ones."""
    _load_all()
    try:
        return REGISTRY[constraint_id]
    except KeyError:
        near = difflib.get_close_matches(constraint_id, REGISTRY, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else f"; known ids: {', '.join(sorted(REGISTRY))}"
        raise KeyError(f"unknown constraint id {constraint_id!r}{hint}") from None


def is_soft(constraint_id: str) -> bool:
    return constraint_id.startswith(SOFT_PREFIX)


@dataclass
class VerifierResult:
    passed: bool
    failed: list[str] = field(default_factory=list)
    feedback: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failed": list(self.failed), "feedback": self.feedback}


def verify(response: str, constraints: list[dict[str, Any]]) -> VerifierResult:
    """Check every verifiable (non-soft) constraint; feedback lists each failure."""
    failed, reasons = [], []
    for c in constraints:
        if is_soft(c["id"]):
            continue
        constraint = get(c["id"])
        kwargs = constraint.validate(c.get("kwargs"))
        ok, reason = constraint.evaluate(response, kwargs)
        if not ok:
            failed.append(c["id"])
            reasons.append(f"- {reason or constraint.describe(kwargs)}")
    return VerifierResult(passed=not failed, failed=failed, feedback="\n".join(reasons))


def by_taxonomy() -> dict[str, list[str]]:
    """Constraint ids grouped by taxonomy class ("Format/length" -> [ids])."""
    _load_all()
    groups: dict[str, list[str]] = {}
    for cid, c in sorted(REGISTRY.items()):
        groups.setdefault(c.taxonomy, []).append(cid)
    return groups


def _load_all() -> None:
    # The kinds live in sibling modules that register themselves on import.
    import spar.constraints  # noqa: F401
