"""The README's commands are the ones CI and users run: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)]


def test_readme_has_exactly_two_commands_and_ci_runs_the_test_one():
    blocks = _bash_blocks((ROOT / "README.md").read_text())
    assert len(blocks) == 2, "the README gives exactly two commands"
    main_cmd, test_cmd = blocks
    assert "\n" not in main_cmd and "\n" not in test_cmd
    assert "torch==2.13.0" in main_cmd and "torch==2.13.0" in test_cmd
    assert "genzoo train" in main_cmd and "genzoo evaluate" in main_cmd
    assert "genzoo sample" in main_cmd
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci_lines, ".ci/run must run the README's test command verbatim"


def test_readme_main_command_uses_only_valid_overrides():
    from genzoo.run_config import RunConfig

    main_cmd = _bash_blocks((ROOT / "README.md").read_text())[0]
    overrides = re.findall(r"--set (\S+)", main_cmd.split("genzoo evaluate")[0])
    RunConfig.default("rbm").with_overrides(overrides)
