"""The fault suite's table: one row per scenario, printed at the end of the run (and kept as Markdown)."""

from __future__ import annotations

from dataclasses import dataclass

from .ledger import Findings


@dataclass
class Outcome:
    scenario: str
    offered: int  # events accepted at the edge: registrations and visits
    faults: str  # what was injected, e.g. "kill -9 eligibility mid-batch"
    findings: Findings
    expected_dead_letters: int = 0
    recovered_s: float | None = None  # from the end of the fault to every offered event applied
    note: str = ""  # e.g. the RSS sampled during a burst

    @property
    def dead_letters(self) -> int:
        return sum(self.findings.dead_letters.values())

    @property
    def passed(self) -> bool:
        return self.findings.clean and self.dead_letters == self.expected_dead_letters


COLUMNS = ("scenario", "events offered", "faults injected", "lost", "duplicate effects",
           "dead letters (expected)", "redelivered by Kafka", "recovered in", "note")


def row(outcome: Outcome) -> tuple[str, ...]:
    f = outcome.findings
    recovered = "-" if outcome.recovered_s is None else f"{outcome.recovered_s:.1f} s"
    return (outcome.scenario, str(outcome.offered), outcome.faults, str(len(f.lost)), str(len(f.duplicates)),
            f"{outcome.dead_letters} ({outcome.expected_dead_letters})", str(f.redelivered), recovered,
            outcome.note)


def markdown(outcomes: list[Outcome]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row(o)) + " |" for o in outcomes]
    return "\n".join(lines)


def table(outcomes: list[Outcome]) -> str:
    """A plain-text table for the terminal."""
    header = COLUMNS
    rows = [header, *(row(o) for o in outcomes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
