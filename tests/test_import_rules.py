"""The import contracts in pyproject.toml hold for the code as it is, and break when a forbidden import is added; the
modules a reader and an unchanged night load first import no heavy library."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (the dev extra)")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    # The working directory comes first on lint-imports' path, so a copy of the packages there is what it reads.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(cwd / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_project(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "src" / "kbcurator", tmp_path / "kbcurator", ignore=ignore)
    shutil.copytree(ROOT / "flows", tmp_path / "flows", ignore=ignore)
    shutil.copytree(ROOT / "checks", tmp_path / "checks", ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_every_import_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


LAYERS = "entry points -> use cases -> features -> index -> settings -> records"


@pytest.mark.parametrize(
    ("module", "line", "contract", "reported"),
    [
        ("records.py", "import flows", "kbcurator imports neither flows nor checks", "kbcurator.records -> flows"),
        ("records.py", "import kbcurator.index.store", LAYERS, "kbcurator.records -> kbcurator.index.store"),
        (
            "gaps/report.py",
            "import kbcurator.analysis.store",
            "ingest, analysis, gaps and quality import none of each other",
            "kbcurator.gaps.report -> kbcurator.analysis.store",
        ),
        # The import that made ingest and index a cycle: the parse memo reaching into the parser.
        (
            "index/parse_memo.py",
            "import kbcurator.ingest.parse",
            LAYERS,
            "kbcurator.index.parse_memo -> kbcurator.ingest",
        ),
        # gaps.report imports gaps.clustering: this closes a cycle inside one package, which the layers allow.
        (
            "gaps/clustering.py",
            "import kbcurator.gaps.report",
            "no import cycles between sibling modules, at any depth",
            "No cycles are allowed in kbcurator.gaps",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_contract(
    tmp_path: Path, module: str, line: str, contract: str, reported: str
) -> None:
    project = copy_of_the_project(tmp_path)
    with (project / "kbcurator" / module).open("a", encoding="utf-8") as handle:
        handle.write(f"\n{line}  # added by the test\n")
    broken = lint_imports(project)

    assert broken.returncode != 0, broken.stdout
    # An upward import also closes a cycle, so the no-cycles contract may break beside the one named here.
    assert f"{contract} BROKEN" in broken.stdout, broken.stdout
    assert reported in broken.stdout, broken.stdout


def test_a_new_module_must_be_given_a_layer(tmp_path: Path) -> None:
    project = copy_of_the_project(tmp_path)
    (project / "kbcurator" / "newcomer.py").write_text('"""Not yet placed in pyproject.toml\'s layers."""\n')
    result = lint_imports(project)
    assert result.returncode != 0
    assert "kbcurator.newcomer" in result.stdout + result.stderr


def test_the_reader_the_search_use_case_and_the_audit_modules_import_no_heavy_library() -> None:
    """What a RAG service imports, and an unchanged night's audit before any detector runs, stay light: each of
    these libraries costs seconds of a cold process and is imported inside the step that needs it."""
    heavy = (
        "prefect",
        "great_expectations",
        "unstructured",
        "torch",
        "sentence_transformers",
        "transformers",
        "onnxruntime",
        "datasketch",
        "scipy",
        "sklearn",
        "hdbscan",
    )
    script = (
        "import sys\n"
        "import kbcurator.index, kbcurator.index.reader, kbcurator.usecases.search\n"
        "import kbcurator.analysis.audit, kbcurator.analysis.duplicates, kbcurator.analysis.contradictions\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
