"""The docs as a whole: README.md (the front page) and every page of docs/ (the MkDocs site).

Every hook is documented (its docstring and the author guide), every variable, core route and metric name is
in the docs, the site builds with ``mkdocs build --strict``, its nav and docs/ hold the same pages, and the
README stays a short front page that links every one of them.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator import hookspecs

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
MKDOCS = ROOT / "mkdocs.yml"
README_MAX_LINES = 150

HOOKS = [
    name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("simulator_")
]
GUIDE = (DOCS / "writing-plugins.md").read_text()


def test_there_are_hooks() -> None:
    assert len(HOOKS) >= 4


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_in_the_author_guide(name: str) -> None:
    assert f"### `{name}(" in GUIDE


@pytest.mark.parametrize("name", HOOKS)
def test_hookspec_docstring_has_returns_and_example(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert "Returns:" in doc
    assert "Example:" in doc
    assert inspect.signature(getattr(hookspecs, name)).return_annotation != inspect.Signature.empty


# -- the reference: every variable, core route and metric name is documented ---------------------------------

REFERENCE = "\n".join(path.read_text() for path in [README, *PAGES])
FENCED = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def test_the_reference_is_the_readme_and_every_page() -> None:
    # The checks below read the docs as a whole: a page that moved or vanished must not pass them by.
    assert len(PAGES) >= 10, [page.name for page in PAGES]
    assert all(path.read_text() in REFERENCE for path in [README, *PAGES])


def sections(title: str) -> list[tuple[str, str]]:
    """Every section of the docs whose heading starts with ``title``: (page, text up to the next heading of
    its level or above). Lines in fenced code (``# a shell comment``) are not headings."""
    found = []
    for path in [README, *PAGES]:
        text = FENCED.sub("", path.read_text())
        for match in re.finditer(rf"^(#+) {re.escape(title)}.*$", text, re.MULTILINE):
            rest = text[match.end() :]
            end = re.search(rf"^#{{1,{len(match.group(1))}}} ", rest, re.MULTILINE)
            found.append((path.name, rest[: end.start() if end else len(rest)]))
    return found


def _settings_variables() -> list[str]:
    from plugins.apim_oauth.settings import ApimSettings
    from plugins.eligibility.settings import EligibilitySettings
    from plugins.nhs_login.settings import LoginSettings
    from simulator.settings import CoreSettings

    found = [f"SIMULATOR_{name.upper()}" for name in CoreSettings.model_fields]
    for cls in (ApimSettings, EligibilitySettings, LoginSettings):
        prefix = cls.model_config.get("env_prefix", "")
        found += [f"{prefix}{name.upper()}" for name in cls.model_fields]
    return found


@pytest.mark.parametrize("variable", _settings_variables())
def test_every_variable_is_documented(variable: str) -> None:
    assert f"`{variable}`" in REFERENCE, f"{variable} is in no table of README.md or docs/"


def _core_routes() -> list[str]:
    from simulator.testing import SimulatorClient

    with SimulatorClient({}) as client:  # no plugin: the OpenAPI document lists the core's routes only
        paths = client.get("/_simulator/openapi.json").json()["paths"]
    return sorted({"/_simulator/openapi.json", "/_simulator/docs", *paths})


def test_the_core_routes_have_one_table() -> None:
    found = sections("Core routes")
    assert len(found) == 1, f"one 'Core routes' section in the docs, not {[page for page, _ in found]}"


@pytest.mark.parametrize("path", _core_routes())
def test_every_core_route_is_in_the_core_routes_table(path: str) -> None:
    ((page, table),) = sections("Core routes")
    assert f" {path}`" in table or f" {path}?" in table, f"{path} is not in the core routes of docs/{page}"


def test_every_metric_name_is_documented() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from simulator.testing import SimulatorClient

    with SimulatorClient({}) as client:
        text = client.get("/_simulator/metrics").text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert len(names) >= 12
    reference = (DOCS / "observability.md").read_text()
    for name in names:
        kind = "_total" if f"{name}_total" in text else ""
        assert f"`{name}{kind}`" in reference, f"{name}{kind} is not in docs/observability.md"


# -- the site: it builds strictly, its nav is docs/, the front page links every page -------------------------


def _nav_pages(entry: Any) -> list[str]:
    """The files a mkdocs nav names, in order (entries are "file", {"title": "file"} or {"title": [...]})."""
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, list):
        return [page for item in entry for page in _nav_pages(item)]
    if isinstance(entry, dict):
        return [page for value in entry.values() for page in _nav_pages(value)]
    raise AssertionError(f"unexpected nav entry {entry!r} in mkdocs.yml")


def nav() -> list[str]:
    config = yaml.safe_load(MKDOCS.read_text())
    assert config["docs_dir"] == "docs"
    return _nav_pages(config["nav"])


def test_every_nav_entry_exists_and_every_page_is_in_the_nav() -> None:
    pages = nav()
    assert pages[0] == "index.md", "the site's home page comes first"
    twice = sorted({page for page in pages if pages.count(page) > 1})
    assert not twice, f"in mkdocs.yml's nav twice: {twice}"
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert not missing, f"in mkdocs.yml's nav but not in docs/: {missing}"
    unlisted = sorted({page.name for page in PAGES} - set(pages))
    assert not unlisted, f"in docs/ but not in mkdocs.yml's nav: {unlisted}"


LINK = re.compile(r"\]\(([^)\s]+)\)")


def _local_links(text: str) -> set[str]:
    """The files a page links to, without anchors; web addresses left out."""
    return {
        link.partition("#")[0]
        for link in LINK.findall(text)
        if not link.startswith(("http://", "https://", "mailto:", "#"))
    }


def test_the_readme_is_a_short_front_page_that_links_every_page() -> None:
    text = README.read_text()
    lines = len(text.splitlines())
    assert lines < README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/ and link it"
    links = _local_links(text)
    every_page = {f"docs/{page}" for page in [*nav(), *(path.name for path in PAGES)]}
    missing = sorted(every_page - links)
    assert not missing, f"README.md's map of the docs does not link {missing}"
    broken = sorted(link for link in links if not (ROOT / link).exists())
    assert not broken, f"README.md links files that do not exist: {broken}"


def test_the_home_page_links_every_other_page() -> None:
    links = _local_links((DOCS / "index.md").read_text())
    every_page = {*nav(), *(path.name for path in PAGES)} - {"index.md"}
    missing = sorted(every_page - links)
    assert not missing, f"docs/index.md does not link {missing}"


def _front_page(text: str) -> list[str]:
    """A front page's lines, its links as the site resolves them, without what only one of the two says:
    the first paragraph under "## Documentation" (where the pages are) and the link to the home page."""
    lines = text.replace("](docs/", "](").splitlines()
    start = lines.index("## Documentation") + 2
    end = lines.index("", start)
    return [line for line in lines[:start] + lines[end:] if not line.startswith("- [Home](index.md)")]


def test_the_home_page_is_the_readme() -> None:
    # Two copies of one text (GitHub shows the README, the site docs/index.md): kept the same, or they drift.
    assert _front_page((DOCS / "index.md").read_text()) == _front_page(README.read_text())


def test_every_make_target_is_in_the_development_page() -> None:
    makefiles = [ROOT / "Makefile", ROOT / "terraform" / "terraform.mk"]
    targets = {
        match.group(1)
        for path in makefiles
        for match in re.finditer(r"^([a-z][a-z-]*):[^#\n]*##", path.read_text(), re.MULTILINE)
    }
    assert {"run", "test", "docs", "deploy", "bench"} <= targets, targets
    page = (DOCS / "development.md").read_text()
    missing = sorted(target for target in targets if f"`make {target}`" not in page)
    assert not missing, f"make targets missing from docs/development.md's table: {missing}"


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    # --strict: a link to a missing page, file or anchor, or a page left out of the nav, fails the build.
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(MKDOCS), "-d", str(site)],
        cwd=ROOT,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    problems = [line for line in result.stderr.splitlines() if line.startswith(("WARNING", "ERROR"))]
    report = "\n".join(problems) or result.stderr[-4000:]
    failed = result.returncode != 0
    assert not failed, f"mkdocs build --strict failed:\n{report}"
    assert (site / "index.html").is_file()
