"""Every benchmark in turn (`make bench`), each printing its own figures; stops at the first that fails.

The full set takes well over an hour on a 2-core machine (search grows a database to a million
resources, load.py generates and loads 100,000 people); `--only` picks some of them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS: dict[str, list[str]] = {  # name -> arguments; "{shared}" becomes the --shared folder
    "ingest": ["ingest.py", "--shared", "{shared}"],
    "read": ["read.py", "--shared", "{shared}"],
    "token": ["token_endpoint.py"],
    "profile_validation": ["profile_validation.py", "--shared", "{shared}"],
    "search": ["search.py", "--shared", "{shared}"],
    "load": ["load.py"],
    "stratify": ["stratify.py"],
    "case_status": ["case_status.py"],
    "holdings": ["holdings.py"],
    "notifications": ["notifications.py"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shared", type=Path, default=HERE.parents[1] / "shared")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run just these")
    args = parser.parse_args()
    for name in args.only or list(BENCHMARKS):
        command = [sys.executable, *(a.format(shared=args.shared.resolve()) for a in BENCHMARKS[name])]
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        subprocess.run(command, cwd=HERE, check=True)
        print(f"== {name}: {time.perf_counter() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
