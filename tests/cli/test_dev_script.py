"""``./dev`` on a fresh machine: it says that it installs before the install's long
silence, and installs only once. Run in a copy of the script with a stand-in Python (no
network, no real install): the stand-in logs each call on standard error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: answers ``-m venv DIR`` by making DIR/bin/python (itself) and DIR/bin/nbs; logs the rest
STAND_IN = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
  printf '#!/usr/bin/env bash\\necho "nbs $*"\\n' > "$3/bin/nbs" && chmod +x "$3/bin/nbs"
  exit 0
fi
echo "python $*" >&2
"""


def test_dev_says_it_installs_before_installing_and_installs_once(tmp_path: Path) -> None:
    for name in ("dev", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    python = tmp_path / "python-stand-in"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    env = {**os.environ, "PYTHON": str(python)}

    def dev() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(tmp_path / "dev"), "demo", "--help"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    first = dev()
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert lines[0].startswith("installing nbs and its dependencies into .venv"), lines
    assert any("-m pip install" in line for line in lines[1:]), lines
    assert first.stdout == "nbs demo --help\n"
    again = dev()  # pyproject.toml unchanged: nothing to install
    assert again.returncode == 0 and again.stderr == "" and again.stdout == first.stdout
