"""`make bench-first-run`: a fresh clone to a login that answers, in seconds.

Clones this repository into a temporary directory, runs `make run` there
as a newcomer would, and times each phase from its output: the virtual
environment, the install, the database and static files, and the moment
the login box is printed and the login page answers 200. `--cold` empties
the installer caches first, as on a machine that never installed these
packages. Prints one JSON line; the figures go into the README by hand.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHES = (Path.home() / ".cache" / "uv", Path.home() / ".cache" / "pip")
# Lines of `make run`'s output that mark the end of a phase.
MARKS = {
    "venv": re.compile(r"-m venv"),
    "install": re.compile(r"touch \.venv/\.installed"),
    "database": re.compile(r"run_local"),
    "box": re.compile(r"Art Factory is up"),
}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def measure(port: int, limit: float) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="af-first-run-"))
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "VIRTUAL_ENV")}
    started = time.monotonic()
    seen: dict[str, float] = {}
    log = workdir / "make-run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "run", f"PORT={port}"], cwd=clone, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        login = f"http://127.0.0.1:{port}/admin/login/"
        try:
            os.set_blocking(process.stdout.fileno(), False)
            while time.monotonic() - started < limit:
                for line in iter(process.stdout.readline, ""):
                    out.write(line)
                    for name, pattern in MARKS.items():
                        if name not in seen and pattern.search(line):
                            seen[name] = time.monotonic() - started
                if "box" in seen and _answers(login):
                    seen["login"] = time.monotonic() - started
                    break
                if process.poll() is not None:
                    break
                time.sleep(0.2)
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
    shutil.rmtree(clone, ignore_errors=True)
    return {"phases_s": {name: round(at, 1) for name, at in seen.items()},
            "login_s": round(seen["login"], 1) if "login" in seen else None,
            "log": str(log)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true",
                        help="empty the uv and pip caches first")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--limit", type=float, default=600)
    args = parser.parse_args()
    if args.cold:
        for cache in CACHES:
            shutil.rmtree(cache, ignore_errors=True)
    load = os.getloadavg()[0]
    result = measure(args.port, args.limit)
    result.update(cold=args.cold, load_before=round(load, 2))
    print(json.dumps(result))
    if result["login_s"] is None:
        sys.exit(f"the login never answered; see {result['log']}")


if __name__ == "__main__":
    main()
