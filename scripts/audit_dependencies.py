"""Run pip-audit on the installed (locked) dependencies and judge its JSON report.

Fails when any package has a known vulnerability. When the vulnerability service cannot
be asked about a package — on this workplace's PyPI mirror the per-version JSON that
pip-audit needs answers 404 — it says so loudly, with the count, instead of passing
silently; `--require-service` turns that into a failure too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    """Audit the venv's packages; return the exit code."""
    require_service = "--require-service" in sys.argv
    extra = [arg for arg in sys.argv[1:] if arg != "--require-service"]
    bin_dir = Path(sys.executable).parent
    frozen = subprocess.run(
        [str(bin_dir / "pip"), "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as lock:
        lock.write(frozen)
        lock.flush()
        result = subprocess.run(
            [
                str(bin_dir / "pip-audit"),
                "-r",
                lock.name,
                "--no-deps",
                "--disable-pip",
                "--progress-spinner",
                "off",
                "-f",
                "json",
                *extra,
            ],
            capture_output=True,
            text=True,
        )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(result.stderr, file=sys.stderr)
        print("audit: pip-audit gave no report; see above.", file=sys.stderr)
        return 1
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    unchecked = [d for d in dependencies if d.get("skip_reason")]
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            print(
                f"VULNERABLE {dependency['name']} {dependency.get('version')}: "
                f"{vuln['id']} (fixed in {fixes})"
            )
    print(
        f"audit: {len(dependencies)} packages, {len(vulnerable)} vulnerable, "
        f"{len(unchecked)} could not be checked."
    )
    if unchecked:
        print(
            f"audit: WARNING — the vulnerability service could not be asked about "
            f"{len(unchecked)} package(s) (e.g. {unchecked[0]['skip_reason']}). "
            "They are NOT known to be safe.",
            file=sys.stderr,
        )
    if vulnerable:
        return 1
    return 1 if unchecked and require_service else 0


if __name__ == "__main__":
    sys.exit(main())
