"""Build the sdist and wheel, check them, install the wheel into a fresh venv, list its files.

    python .ci/check_wheel.py [--outdir dist]

Fails (exit 1) when ``twine check --strict`` complains, when a template, static file
or migration of the source tree is missing from the wheel or from the installed
package, when the wheel carries the tests, the example project or the benchmarks, or
when the installed wheel fails ``pip check`` or reports another version than its name.
That the installed wheel works in a fresh project is .ci/check_snippets.py's job (and
.ci/host_smoke's).
Run by ``tox -e package``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "django_engagement"
DATA_DIRS = ("templates", "static", "migrations")
FORBIDDEN_PREFIXES = ("tests/", "example_project/", "benchmarks/", "docs/")
SDIST_FILES = ("README.md", "CHANGELOG.md", "LICENSE", "setup.cfg", "pyproject.toml")


def run(*args: str | Path) -> None:
    print("$", " ".join(map(str, args)), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT)


def source_files() -> set[str]:
    """Files the package must ship: its templates, static files, migrations and py.typed."""
    base = ROOT / PACKAGE
    files = {f"{PACKAGE}/py.typed"}
    for name in DATA_DIRS:
        for path in (base / name).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.add(path.relative_to(ROOT).as_posix())
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist")
    outdir = parser.parse_args().outdir.resolve()
    shutil.rmtree(outdir, ignore_errors=True)
    run(sys.executable, "-m", "build", "--outdir", outdir, ROOT)
    (wheel,) = outdir.glob("*.whl")
    (sdist,) = outdir.glob("*.tar.gz")
    run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)

    problems = []
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    expected = source_files()
    for kind in DATA_DIRS:
        if not any(f"{PACKAGE}/{kind}/" in name for name in expected):
            problems.append(f"the source tree has no {PACKAGE}/{kind}/ files")
    problems += [f"missing from the wheel: {name}" for name in sorted(expected - in_wheel)]
    problems += [
        f"should not be in the wheel: {name}"
        for name in sorted(in_wheel)
        if name.startswith(FORBIDDEN_PREFIXES)
    ]
    with tarfile.open(sdist) as archive:
        sdist_names = {name.split("/", 1)[-1] for name in archive.getnames()}
    problems += [
        f"missing from the sdist: {name}" for name in SDIST_FILES if name not in sdist_names
    ]

    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "venv"
        venv.EnvBuilder(with_pip=True).create(env)
        python = env / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
        # The dependencies pip chose fit the wheel's requirements, and the installed
        # distribution is the version the package reports (what docs/guide/installation.md
        # tells users to build and install).
        run(python, "-m", "pip", "check")
        versions = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m, django_engagement as p;"
                "print(m.version('django-engagement'), p.__version__)",
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp,
        ).stdout.split()
        wheel_version = wheel.name.split("-")[1]
        if versions != [wheel_version, wheel_version]:
            problems.append(f"installed versions {versions}, the wheel's {wheel_version}")
        listing = subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.util, pathlib, sys;"
                f"root = pathlib.Path(importlib.util.find_spec({PACKAGE!r}).origin).parent;"
                "print('\\n'.join(sorted(p.relative_to(root.parent).as_posix()"
                " for p in root.rglob('*') if p.is_file() and '__pycache__' not in p.parts)))",
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=tmp,  # not ROOT: the source tree must not shadow the installed package
        ).stdout.split()
        installed = set(listing)
        problems += [f"missing after install: {name}" for name in sorted(expected - installed)]

    print(f"\n{wheel.name}: {len(in_wheel)} files; installed package files:")
    for name in sorted(installed):
        if name.startswith(tuple(f"{PACKAGE}/{kind}/" for kind in DATA_DIRS)):
            print(f"  {name}")
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems))
        return 1
    print(f"\nOK: {len(expected)} templates, static files and migrations shipped and installed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
