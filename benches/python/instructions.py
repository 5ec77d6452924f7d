"""Instructions per query of two callgrind profiles (scripts/bench-instructions.sh).

Usage: instructions.py BASE NEW MODE TOP, where BASE and NEW are callgrind outputs whose
dump after the measured load is BASE.1 / NEW.1, with the load generator's JSON in
BASE.load / NEW.load. Prints the totals per query and the functions whose own (self)
instructions per query moved most.
"""

import collections
import json
import re
import subprocess
import sys

LINE = re.compile(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")


def per_query(prefix: str) -> dict[str, float]:
    """Self instructions per query of each function of a profile."""
    with open(f"{prefix}.load") as f:
        queries = json.load(f)["queries"]
    out = subprocess.run(
        ["callgrind_annotate", "--threshold=100", f"{prefix}.1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    costs: dict[str, float] = collections.defaultdict(float)
    for line in out.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        name = re.sub(r"\s*\[[^\]]*\]\s*$", "", m.group(2))
        name = re.sub(r"^[^:]*\?\?\?:", "", name)
        name = re.sub(r"::h[0-9a-f]{16}", "", name)
        costs[name] += int(m.group(1).replace(",", "")) / queries
    return costs


def main() -> None:
    base_path, new_path, mode, top = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    base, new = per_query(base_path), per_query(new_path)
    tb, tn = base.pop("PROGRAM TOTALS"), new.pop("PROGRAM TOTALS")
    print(f"{mode}: instructions per query base {tb:,.0f}, new {tn:,.0f} ({tn / tb - 1:+.1%})")
    # Functions on every path (thread start, the runtime's loop) carry the whole total.
    moved = sorted(
        ((new.get(k, 0) - base.get(k, 0), k) for k in set(base) | set(new) if max(base.get(k, 0), new.get(k, 0)) < 0.5 * tb),
        key=lambda x: -abs(x[0]),
    )
    print(f"{'moved':>8} {'base':>8} {'new':>8}  function (self instructions per query)")
    for d, k in moved[:top]:
        print(f"{d:8.0f} {base.get(k, 0):8.0f} {new.get(k, 0):8.0f}  {k[:140]}")


if __name__ == "__main__":
    main()
