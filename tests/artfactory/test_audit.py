"""`make audit` says plainly when nothing could be checked."""
import importlib.util

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("audit", ROOT / "tools" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)


def test_a_service_that_knew_no_package_checked_nothing_and_passes():
    report = {"dependencies": [
        {"name": "django", "skip_reason": "Dependency not found on PyPI"},
        {"name": "rq", "skip_reason": "Dependency not found on PyPI"},
    ]}
    lines, code = audit.summarize(report)
    assert code == 0
    assert "none of the 2 pinned packages; NOTHING WAS CHECKED." in lines[0]


def test_a_known_vulnerability_fails_naming_the_fix():
    report = {"dependencies": [
        {"name": "django", "version": "5.2.19", "vulns": [
            {"id": "PYSEC-2099-1", "fix_versions": ["5.2.20"]}]},
        {"name": "rq", "version": "2.12.0", "vulns": []},
        {"name": "av", "skip_reason": "not on the index"},
    ]}
    lines, code = audit.summarize(report)
    assert code == 1
    assert "audit: not checked: av (not on the index)" in lines
    assert "audit: django 5.2.19: PYSEC-2099-1 (fixed in 5.2.20)" in lines
    assert lines[-1] == "audit: 2 packages checked, 1 known vulnerabilities"


def test_clean_packages_pass():
    lines, code = audit.summarize({"dependencies": [
        {"name": "rq", "version": "2.12.0", "vulns": []}]})
    assert code == 0
    assert lines == ["audit: 1 packages checked, 0 known vulnerabilities"]
