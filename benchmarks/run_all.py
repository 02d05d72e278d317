"""Run every benchmark, then write benchmarks/results.json and the table in benchmarks/README.md.

``make bench`` runs this. Each benchmark merges its section into ``results.json``; the table
between the markers in ``README.md`` is then regenerated from that file.
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_engine.py", "bench_screen.py", "bench_provider.py", "bench_stream.py"]
README = HERE / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def update_readme() -> None:
    """Replace the results table in README.md with one built from results.json."""
    from benchmarks.common import RESULTS, readme_table

    table = readme_table(json.loads(RESULTS.read_text()))
    text = README.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    only = sys.argv[1:] or BENCHMARKS
    unknown = [name for name in only if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"usage: run_all.py [{' '.join(BENCHMARKS)}]  (unknown: {' '.join(unknown)})")
    for name in only:
        print(f"\n=== {name} ===", flush=True)
        runpy.run_path(str(HERE / name), run_name="__main__")
    update_readme()
    print(f"\nwrote {README.relative_to(HERE.parent)}")
