"""The package as PyPI would ship it: `python -m build` makes a wheel that installs in a fresh virtualenv and
imports there with nothing but its declared dependencies."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]

# What each module of the package is: the core and the plain ASGI/WSGI middleware need no web framework;
# identsphere.fastapi needs the FastAPI the application brings.
PROBE = """
import importlib, json, sys
import identsphere, identsphere.asgi, identsphere.wsgi
try:
    importlib.import_module("identsphere.fastapi")
    fastapi = "imported"
except ImportError as error:
    fastapi = error.name
frameworks = [m for m in ("fastapi", "starlette", "flask", "werkzeug", "django") if m in sys.modules]
print(json.dumps({"version": identsphere.__version__, "fastapi": fastapi, "frameworks": frameworks,
                  "names": sorted(identsphere.__all__)}))
"""


def test_the_wheel_installs_in_a_fresh_virtualenv_and_imports_with_its_declared_dependencies_only(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(PROJECT)], check=True
    )
    (wheel,) = dist.glob("identsphere-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = Parser().parsestr(archive.read(next(n for n in names if n.endswith("METADATA"))).decode())
    assert "identsphere/py.typed" in names, "typed: PEP 561"
    assert not [n for n in names if n.startswith(("tests/", "benches/"))]
    assert sorted(metadata.get_all("Requires-Dist") or []) == ["httpx<1,>=0.24", "pyjwt[crypto]<3,>=2.8"]
    assert metadata["Requires-Python"] == ">=3.9"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel)], check=True)
    probe = subprocess.run([python, "-c", PROBE], check=True, capture_output=True, text=True, cwd=tmp_path)
    imported = json.loads(probe.stdout)
    assert imported["version"] == "0.1.0"
    assert imported["frameworks"] == [], "the core and the middleware import no web framework"
    assert imported["fastapi"] == "fastapi", "identsphere.fastapi needs the application's FastAPI"
    assert {"Client", "AsyncClient", "Verifier", "AsyncVerifier", "Claims", "IdentSphereError"} <= set(
        imported["names"]
    )
