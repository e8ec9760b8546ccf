"""The README's two commands, extracted as written (CI and tests run them, never a retyped
copy): the first ``bash`` block of the section "The two commands" sets up and runs the main
job, the last one sets up and runs the tests.

    python3 tests/support/readme.py main|tests   # prints the command
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## The two commands"


def readme_commands(readme: Path = README) -> dict[str, str]:
    text = readme.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    blocks = re.findall(r"```bash\n(.*?)```", text[start : end if end > 0 else None], re.S)
    if len(blocks) < 2:
        raise ValueError(f"{readme}: section {SECTION!r} needs two bash blocks")
    return {"main": blocks[0].strip(), "tests": blocks[-1].strip()}


if __name__ == "__main__":
    print(readme_commands()[sys.argv[1]])
