"""Run the documentation's code blocks, as pasted, in fresh ``startproject`` projects.

    python .ci/check_snippets.py [--wheel dist/x.whl] [--django 5.2 --django 6.1] [--keep]

Every fenced block of README.md, docs/guide/installation.md and docs/guide/quickstart.md
carries a marker on the line above it, an HTML comment (invisible on GitHub and in the
built docs) that says what to do with it:

``<!-- snippet: settings -->``
    appended to the project's ``settings.py``
``<!-- snippet: urls -->``
    appended to the project's ``urls.py``
``<!-- snippet: file courses/views.py -->``
    written to that file of the project
``<!-- snippet: shell -->``
    run with bash (``set -e``) in the project directory, the venv's ``python`` first on PATH
``<!-- snippet: python -->``
    run with ``python manage.py shell -c``
``<!-- snippet: http -->``
    ``METHOD /path [JSON body]`` lines sent to the running project over real HTTP, as a
    superuser (HTTP Basic); text after ``#`` is a comment; each answer must be 2xx
``<!-- snippet: skip: reason -->``
    not run (installation commands, which this script performs itself)

A block without a marker fails the run, so a new example cannot slip in untested.

For each Django version a venv is made under a temporary directory: the first installs
the package from the checkout (``pip install .``), the others the wheel that
``python -m build`` makes (or ``--wheel``). For each document: ``django-admin
startproject mysite .``, an app ``courses`` holding the neutral target model the docs
use (``Course`` with ``students``, a many-to-many to the user model) and a superuser,
then the document's blocks in order, then a real HTTP server on a free loopback port and
the final checks: ``check --fail-level WARNING``, no missing migrations, events and feed
items recorded, the API root and the feed served, the admin dashboard answering 200 with
its charts' markup. Exit 1 on the first failure, with the document, block and output.
"""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("README.md", "docs/guide/installation.md", "docs/guide/quickstart.md")
#: Django series -> interpreters to try, newest first (Django 6.x needs Python 3.12+).
PYTHONS = {
    "5.2": ("python3.11", "python3.12", "python3.13"),
    "6.0": ("python3.13", "python3.12"),
    "6.1": ("python3.13", "python3.12"),
}
ADMIN = ("admin", "admin-pw-7Hq")
KINDS = ("settings", "urls", "file", "shell", "python", "http", "skip")
MARKER = re.compile(r"^<!-- snippet: (?P<kind>[a-z]+)(?::? (?P<arg>.*?))? -->$")
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<info>[^`]*)$")
HTTP_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|OPTIONS)\s+(\S+)\s*(.*)$")

COURSE_MODELS = """\
from django.conf import settings
from django.db import models


class Course(models.Model):
    name = models.CharField(max_length=120)
    students = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="courses")

    def __str__(self):
        return self.name
"""

SERVE = '''\
"""A WSGI server on a free loopback port; prints the port, then serves until killed."""
import os
import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
from django.core.wsgi import get_wsgi_application


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
'''

VERIFY = """\
from django_engagement.models import get_event_model, get_feed_model

events = get_event_model().objects.count()
items = get_feed_model().objects.count()
print(f"{events} events, {items} feed items")
assert events > 0, "no event was recorded"
"""


class SnippetError(Exception):
    """A block or a final check failed; the message says where and shows the output."""


@dataclass
class Block:
    document: str
    line: int
    kind: str
    arg: str
    code: str

    def where(self) -> str:
        return f"{self.document}:{self.line} ({self.kind}{' ' + self.arg if self.arg else ''})"


def extract(document: str) -> list[Block]:
    """The fenced blocks of ``document`` with their markers; unmarked blocks are errors."""
    lines = (ROOT / document).read_text().splitlines()
    blocks, problems, index = [], [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence = match["indent"], match["fence"]
        start, body = index, []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index][len(indent) :])
            index += 1
        index += 1
        previous = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        marker = MARKER.match(previous)
        if not marker or marker["kind"] not in KINDS:
            problems.append(f"{document}:{start + 1}: code block without a snippet marker")
            continue
        code = "\n".join(body) + "\n"
        blocks.append(Block(document, start + 1, marker["kind"], marker["arg"] or "", code))
    if problems:
        raise SnippetError("\n".join(problems))
    return blocks


def run(args: list[str | Path], cwd: Path, env: dict[str, str], what: str) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise SnippetError(
            f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout


def find_python(series: str) -> str:
    """An interpreter Django ``series`` supports: on PATH, else under pyenv's versions."""
    for name in PYTHONS[series]:
        candidates = [shutil.which(name) or ""]
        candidates += sorted(
            str(p) for p in Path.home().glob(f".pyenv/versions/{name[6:]}.*/bin/{name}")
        )
        for exe in filter(None, candidates):
            if subprocess.run([exe, "-c", ""], capture_output=True).returncode == 0:
                return exe
    raise SnippetError(f"no Python for Django {series} (tried {', '.join(PYTHONS[series])})")


def make_venv(series: str, target: Path, install: str | Path, env: dict[str, str]) -> Path:
    python = find_python(series)
    run([python, "-m", "venv", target], ROOT, env, f"venv for Django {series}")
    bin_dir = target / "bin"
    run(
        [bin_dir / "python", "-m", "pip", "install", "-q", install, f"Django~={series}.0"],
        ROOT,
        env,
        f"pip install {install} Django~={series}.0",
    )
    version = run([bin_dir / "python", "-m", "django", "--version"], ROOT, env, "django")
    print(f"  Django {version.strip()} on {python}, package from {install}", flush=True)
    return bin_dir


class Site:
    """The running project: a WSGI server process and an HTTP client with cookies."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        (project / "_serve.py").write_text(SERVE)
        self.process = subprocess.Popen(
            ["python", "_serve.py"],
            cwd=project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise SnippetError(f"the server did not start:\n{line}{self.process.stderr.read()}")
        self.base = f"http://127.0.0.1:{line.strip()}"
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def close(self) -> None:
        self.process.kill()
        self.process.wait()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        form: dict[str, str] | None = None,
        basic: bool = True,
        accept: str = "application/json",
    ) -> tuple[int, str]:
        headers = {"Accept": accept}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = self.base + path
        if basic:
            token = base64.b64encode(":".join(ADMIN).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        request = urllib.request.Request(self.base + path, data, headers, method=method)
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def admin_login(self) -> None:
        status, page = self.request("GET", "/admin/login/", basic=False, accept="text/html")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or not token:
            raise SnippetError(f"GET /admin/login/ answered {status} without a login form")
        form = {
            "csrfmiddlewaretoken": token[1],
            "username": ADMIN[0],
            "password": ADMIN[1],
            "next": "/admin/",
        }
        status, page = self.request(
            "POST", "/admin/login/", form=form, basic=False, accept="text/html"
        )
        if status != 200 or "/admin/logout/" not in page:
            raise SnippetError(f"the admin login failed ({status})")


def http_requests(block: Block) -> list[tuple[str, str, object]]:
    """``METHOD /path [JSON]`` lines; a JSON body may continue on the following lines."""
    requests: list[list] = []
    for line in block.code.splitlines():
        match = HTTP_LINE.match(line.strip())
        if match:
            requests.append([match[1], match[2], match[3]])
        elif requests and line.strip():
            requests[-1][2] += "\n" + line.strip()
    parsed = []
    for method, path, rest in requests:
        rest = rest.strip()
        body = None
        if rest and not rest.startswith("#"):
            try:
                body, _ = json.JSONDecoder().raw_decode(rest)
            except json.JSONDecodeError as exc:
                raise SnippetError(f"{block.where()}: {method} {path}: bad JSON: {exc}") from exc
        parsed.append((method, path, body))
    if not parsed:
        raise SnippetError(f"{block.where()}: no METHOD /path line")
    return parsed


def run_document(document: str, bin_dir: Path, workdir: Path, env: dict[str, str]) -> None:
    blocks = extract(document)
    project = workdir / Path(document).stem.lower()
    project.mkdir(parents=True)
    env = {**env, "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "PYTHONPATH": ""}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)

    def manage(*args: str, what: str = "") -> str:
        return run(["python", "manage.py", *args], project, env, what or f"manage.py {args[0]}")

    # The host project: what startproject made, plus the app whose model users join.
    run([bin_dir / "django-admin", "startproject", "mysite", "."], project, env, "startproject")
    manage("startapp", "courses")
    (project / "courses" / "models.py").write_text(COURSE_MODELS)
    settings_py, urls_py = project / "mysite" / "settings.py", project / "mysite" / "urls.py"
    with settings_py.open("a") as f:
        f.write('\nINSTALLED_APPS += ["courses"]\n')
    manage("makemigrations", "courses", "-v0")

    site = None
    try:
        for block in blocks:
            what = block.where()
            if block.kind == "skip":
                continue
            if block.kind in ("settings", "urls"):
                with (settings_py if block.kind == "settings" else urls_py).open("a") as f:
                    f.write("\n" + block.code)
            elif block.kind == "file":
                path = project / block.arg
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(block.code)
            elif block.kind == "shell":
                run(["bash", "-ec", block.code], project, env, what)
            elif block.kind == "python":
                output = manage("shell", "-v0", "-c", block.code, what=what)
                if output.strip():
                    print(textwrap.indent(output.rstrip(), "        "))
            elif block.kind == "http":
                if site is None:
                    manage("migrate", "-v0")
                    create_admin(manage)
                    site = Site(project, env)
                for method, path, body in http_requests(block):
                    status, text = site.request(method, path, body=body)
                    if not 200 <= status < 300:
                        raise SnippetError(f"{what}: {method} {path} answered {status}:\n{text}")
            print(f"    ok  {what}", flush=True)

        # Final checks: the project as the document leaves it.
        # Errors fail; the deployment warnings a fresh project gets (W003: the throttle in a
        # per-process cache, W004: SDK endpoints without write keys) are documented in
        # installation.md, and a new project cannot settle them before it has a cache.
        manage("check", "--fail-level", "ERROR")
        manage("makemigrations", "--check", "--dry-run", what="makemigrations --check")
        manage("migrate", "-v0")
        if site is None:
            create_admin(manage)
            site = Site(project, env)
        status, text = site.request("POST", "/api/engagement/events/", body={"event_type": "ok"})
        if status != 201:
            raise SnippetError(f"POST /api/engagement/events/ answered {status}: {text}")
        print("    " + manage("shell", "-v0", "-c", VERIFY, what="events and feed items").strip())
        status, text = site.request("GET", "/api/engagement/")
        if status != 200 or "activity-feed" not in json.loads(text):
            raise SnippetError(f"GET /api/engagement/ answered {status}: {text[:500]}")
        status, text = site.request("GET", "/api/engagement/activity-feed/")
        if status != 200 or "results" not in json.loads(text):
            raise SnippetError(f"GET /api/engagement/activity-feed/ answered {status}: {text}")
        site.admin_login()
        status, page = site.request(
            "GET", "/admin/django_engagement/dashboard/", basic=False, accept="text/html"
        )
        charts = page.count("data-chart=")
        if status != 200 or charts < 3:
            raise SnippetError(f"the admin dashboard answered {status} with {charts} charts")
        print(f"    ok  API root, feed, admin dashboard ({charts} charts)", flush=True)
    finally:
        if site is not None:
            site.close()


def create_admin(manage) -> None:
    code = textwrap.dedent(
        f"""
        from django.contrib.auth import get_user_model
        User = get_user_model()
        if not User.objects.filter(username={ADMIN[0]!r}).exists():
            User.objects.create_superuser({ADMIN[0]!r}, "admin@example.com", {ADMIN[1]!r})
        """
    )
    manage("shell", "-v0", "-c", code, what="create the superuser")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="install this wheel (default: build one)")
    parser.add_argument("--django", action="append", choices=sorted(PYTHONS))
    parser.add_argument("--keep", action="store_true", help="keep the projects, print where")
    parser.add_argument("documents", nargs="*", default=DOCUMENTS, help=f"default: {DOCUMENTS}")
    options = parser.parse_args()
    documents = options.documents
    series = options.django or ["5.2", "6.1"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    started = time.monotonic()

    tmp = Path(tempfile.mkdtemp(prefix="engagement-snippets-"))
    try:
        for document in documents:
            extract(document)  # unmarked blocks fail before anything is installed
        wheel = options.wheel.resolve() if options.wheel else None
        if wheel is None and len(series) > 1:
            run(
                [sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", ROOT],
                ROOT,
                env,
                "python -m build --wheel",
            )
            (wheel,) = (tmp / "dist").glob("*.whl")
        for number, version in enumerate(series):
            # The first venv installs from the checkout, the others the built wheel.
            install = ROOT if number == 0 or wheel is None else wheel
            print(f"Django {version}:", flush=True)
            bin_dir = make_venv(version, tmp / f"venv-{version}", install, env)
            for document in documents:
                print(f"  {document}", flush=True)
                run_document(document, bin_dir, tmp / f"django-{version}", env)
    except SnippetError as error:
        print(f"\nFAILED: {error}", file=sys.stderr)
        return 1
    finally:
        if options.keep:
            print(f"projects kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.monotonic() - started
    print(f"\nOK: {', '.join(documents)} on Django {', '.join(series)} in {seconds:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
