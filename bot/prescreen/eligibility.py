"""Study questionnaires: parse answers by question kind and evaluate the eligibility rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from storage.models import Question


class AnswerError(ValueError):
    pass


@dataclass
class Evaluation:
    answered: dict[str, Any] = field(default_factory=dict)
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def eligible(self) -> bool | None:
        """False when any rule failed; True when every rule was answered and passed."""
        if self.failed:
            return False
        if self.missing:
            return None
        return True


def parse_answer(q: Question, raw: Any) -> Any:
    """Turn a raw form value into the typed answer; raise AnswerError with a user message."""
    if raw is None or raw == "":
        return None
    if q.kind == "number":
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise AnswerError("Enter a number, like 62.") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise AnswerError("Enter a number, like 62.")
        return int(value) if value.is_integer() else value
    if q.kind == "yes_no":
        if raw in (True, "yes", "true"):
            return True
        if raw in (False, "no", "false"):
            return False
        raise AnswerError("Choose Yes or No.")
    if q.kind == "choice":
        if str(raw) not in [str(o) for o in q.options]:
            raise AnswerError("Choose one of the listed options.")
        return str(raw)
    if q.kind == "date":
        try:
            return dt.date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            raise AnswerError("Pick a date.") from None
    raise AnswerError("This question cannot be answered.")


def passes(q: Question, value: Any) -> bool:
    rule = q.rule or {}
    if not rule:
        return True
    if q.kind == "number":
        lo, hi = rule.get("min"), rule.get("max")
        return (lo is None or value >= lo) and (hi is None or value <= hi)
    if q.kind == "yes_no":
        return bool(value) is bool(rule["equals"])
    if q.kind == "choice":
        if "in" in rule and value not in rule["in"]:
            return False
        return not ("not_in" in rule and value in rule["not_in"])
    if q.kind == "date":
        day = dt.date.fromisoformat(value)
        if "before" in rule and not day < dt.date.fromisoformat(rule["before"]):
            return False
        return not ("after" in rule and not day > dt.date.fromisoformat(rule["after"]))
    return True


def evaluate(questions: list[Question], answers: dict[str, Any]) -> Evaluation:
    """Evaluate typed answers (output of parse_answer) against each question's rule."""
    ev = Evaluation()
    for q in questions:
        value = answers.get(q.qid)
        if value is None:
            if q.rule:
                ev.missing.append(q.qid)
            continue
        ev.answered[q.qid] = value
        if not q.rule:
            continue
        (ev.passed if passes(q, value) else ev.failed).append(q.qid)
    return ev
