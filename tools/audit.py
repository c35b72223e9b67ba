"""`make audit`: look the pinned requirements up in a vulnerability database.

pip-audit reports "no known vulnerabilities" even when the service could not
be asked about a single package; this says plainly what was and was not
checked. Exit 1 only for a vulnerability found: an unreachable service is
reported, not failed on.
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ("requirements.txt", "requirements-test.txt")


def run_pip_audit() -> subprocess.CompletedProcess:
    """pip-audit over the pinned files, run from var/audit-venv, as JSON."""
    return subprocess.run(
        [sys.executable, "-m", "pip_audit",
         *(arg for name in REQUIREMENTS for arg in ("--requirement", name)),
         "--no-deps", "--disable-pip", "--format", "json", "--progress-spinner", "off"],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )


def summarize(report: dict) -> tuple[list[str], int]:
    """Lines to print, and the exit code, for pip-audit's JSON report."""
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if "skip_reason" in d]
    if deps and len(skipped) == len(deps):
        return [
            f"audit: the vulnerability service answered for none of the {len(deps)} "
            "pinned packages; NOTHING WAS CHECKED.",
            f"audit: first reason: {skipped[0]['skip_reason']}",
        ], 0
    lines = [f"audit: not checked: {d['name']} ({d['skip_reason']})" for d in skipped]
    found = [(d, v) for d in deps for v in d.get("vulns", [])]
    for dep, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
        lines.append(f"audit: {dep['name']} {dep['version']}: {vuln['id']} (fixed in {fixes})")
    checked = len(deps) - len(skipped)
    lines.append(f"audit: {checked} packages checked, {len(found)} known vulnerabilities")
    return lines, 1 if found else 0


def main() -> int:
    result = run_pip_audit()
    try:
        report = json.loads(result.stdout)
    except ValueError:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print("audit: could not reach the vulnerability service; NOTHING WAS CHECKED.")
        print(f"audit: {last}")
        return 0
    lines, code = summarize(report)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
