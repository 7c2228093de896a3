"""Where the tests find the shared data folder (HL7 examples, Synthea, sample extracts): SHARED_DIR, else ../shared."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DIR", PROJECT.parent / "shared"))
MARK = "shared"  # the marker every test that needs the folder gets (through the `shared_dir` fixture)


def absent_message(needing: list[str]) -> str:
    """What to say when the folder is absent and the `needing` tests (node ids) were selected."""
    shown = "\n".join(f"  {node}" for node in needing[:5]) + ("\n  ..." if len(needing) > 5 else "")
    return (f"The shared data folder {SHARED} (SHARED_DIR, default ../shared) is absent, and {len(needing)} "
            f"selected tests need it:\n{shown}\nPoint SHARED_DIR at it (`make test SHARED=/path/to/shared`), or "
            f"leave those tests out with `-m 'not {MARK}'`.")
