"""The client x scenario matrix as text (printed by conftest.py's terminal summary)."""
from __future__ import annotations

from compat_common import CLIENTS
from compat_common import MATRIX_SCENARIOS as SCENARIOS


def render_matrix(results: dict[tuple[str, str], tuple[str, str]],
                  lacks: dict[str, dict[str, str]]) -> str:
    width = max(len(c) for c in CLIENTS) + 2
    cols = [max(len(s), 6) + 2 for s in SCENARIOS]
    lines = ["client".ljust(width) + "".join(s.ljust(w) for s, w in zip(SCENARIOS, cols))]
    for client in CLIENTS:
        lines.append(client.ljust(width) + "".join(
            results.get((client, s), ("-", ""))[0].ljust(w) for s, w in zip(SCENARIOS, cols)))
    if lacks:
        lines += ["", "PASS* = passed doing everything the client can; it lacks:"]
        for c in CLIENTS:
            for op, reason in lacks.get(c, {}).items():
                lines.append(f"  {c}: {op}: {reason}")
    notes = [(c, s, st, n) for (c, s), (st, n) in sorted(results.items(), key=_order) if n]
    if notes:
        lines += ["", "Notes, skips and failures:"]
        lines += [f"  {c} / {s}: {st}: {n}" for c, s, st, n in notes]
    counts = {st: sum(1 for v in results.values() if v[0] == st)
              for st in ("PASS", "PASS*", "FAIL", "ERROR", "SKIP")}
    lines.append("")
    lines.append(", ".join(f"{n} {st}" for st, n in counts.items()) + f", "
                 f"{len(CLIENTS) * len(SCENARIOS) - len(results)} not run")
    return "\n".join(lines) + "\n"


def _order(item) -> tuple[int, int]:
    (c, s), _ = item
    return CLIENTS.index(c), SCENARIOS.index(s)
