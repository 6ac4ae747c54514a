"""Audit the locked dependencies (requirements.lock) for known vulnerabilities.

pip-audit asks PyPI's per-version JSON (`/pypi/NAME/VERSION/json`) for each pinned
version. Where that lookup cannot be made — this workplace's PyPI mirror answers 404 for
it — the same advisory data is read from the project JSON (`/pypi/NAME/json`), whose
`vulnerabilities` list is PyPI's record for the project's *latest* release: exact for a
pin that is the latest release, and not usable for an older pin. An older pin that no
service could be asked about is named as unchecked, never passed silently;
`--require-service` turns that into a failure.

Exit status: 1 when any locked version has a known (not withdrawn) vulnerability, or when
pip-audit gave no report; 0 otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
LOCK_FILE = ROOT / "requirements.lock"
PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
LOOKUP_TIMEOUT_SECONDS = 15


def run_pip_audit(lock_file: Path, extra: list[str]) -> list[dict] | None:
    """pip-audit's per-package report for the lock file, or None if it gave none."""
    pip_audit = Path(sys.executable).parent / "pip-audit"
    result = subprocess.run(
        [
            str(pip_audit),
            "-r",
            str(lock_file),
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
        return json.loads(result.stdout).get("dependencies", [])
    except json.JSONDecodeError:
        print(result.stderr, file=sys.stderr)
        return None


def read_lock(lock_file: Path) -> dict[str, str]:
    """Canonical name -> pinned version, from the NAME==VERSION lines of the lock file."""
    pins = {}
    for line in lock_file.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def latest_release_advisories(name: str, version: str) -> tuple[list[dict] | None, str]:
    """Advisories for NAME==VERSION from the project JSON, when VERSION is the latest.

    Returns (advisories, note); advisories is None when this cannot tell.
    """
    url = PROJECT_JSON.format(name=canonicalize_name(name))
    try:
        # bandit B310: the URL is a fixed https:// address, not user input.
        with urllib.request.urlopen(url, timeout=LOOKUP_TIMEOUT_SECONDS) as response:  # nosec B310
            project = json.load(response)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as error:
        return None, f"project JSON unreachable ({error})"
    latest = project.get("info", {}).get("version", "")
    if not same_version(latest, version):
        return None, f"locked {version}, latest is {latest}; no per-version lookup here"
    advisories = [
        advisory
        for advisory in project.get("vulnerabilities") or []
        if not advisory.get("withdrawn")
    ]
    return advisories, "latest release, checked through the project JSON"


def main() -> int:
    args = sys.argv[1:]
    require_service = "--require-service" in args
    extra = [arg for arg in args if arg != "--require-service"]
    dependencies = run_pip_audit(LOCK_FILE, extra)
    if dependencies is None:
        print("audit: pip-audit gave no report; see above.", file=sys.stderr)
        return 1

    vulnerable: list[tuple[str, str, str, str]] = []
    checked_by_pip_audit = 0
    skipped = []
    for dependency in dependencies:
        if dependency.get("skip_reason"):
            skipped.append(dependency)
            continue
        checked_by_pip_audit += 1
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            vulnerable.append((dependency["name"], dependency["version"], vuln["id"], fixes))

    # pip-audit leaves the version out of a skipped package's entry; the lock has it.
    pins = read_lock(LOCK_FILE)
    for dependency in skipped:
        dependency["version"] = pins.get(canonicalize_name(dependency["name"]), "")
    with ThreadPoolExecutor(max_workers=8) as pool:
        lookups = list(
            pool.map(lambda d: latest_release_advisories(d["name"], d["version"]), skipped)
        )
    checked_as_latest = 0
    unchecked: list[tuple[str, str, str]] = []
    for dependency, (advisories, note) in zip(skipped, lookups, strict=True):
        if advisories is None:
            unchecked.append((dependency["name"], dependency["version"], note))
            continue
        checked_as_latest += 1
        for advisory in advisories:
            fixes = ", ".join(advisory.get("fixed_in") or []) or "no fix yet"
            vulnerable.append((dependency["name"], dependency["version"], advisory["id"], fixes))

    for name, version, vuln_id, fixes in vulnerable:
        print(f"VULNERABLE {name} {version}: {vuln_id} (fixed in {fixes})")
    for name, version, note in unchecked:
        print(f"UNCHECKED {name} {version}: {note}", file=sys.stderr)
    print(
        f"audit: {len(dependencies)} locked packages; {checked_by_pip_audit} checked by "
        f"pip-audit, {checked_as_latest} checked as their latest release through PyPI's "
        f"project JSON, {len(unchecked)} could not be checked; "
        f"{len({(n, v) for n, v, _, _ in vulnerable})} vulnerable."
    )
    if unchecked:
        print(
            f"audit: WARNING — {len(unchecked)} package(s) above are NOT known to be safe.",
            file=sys.stderr,
        )
    if vulnerable:
        return 1
    return 1 if unchecked and require_service else 0


if __name__ == "__main__":
    sys.exit(main())
