"""The three virtualenvs of the benchmark, cached under bench/.venvs/ (same Python, same Django, same tools).

* ``ours``: this working tree, installed editable (``pip install -e``), so a re-run measures the current code.
* ``mf095``: django-multifactor 0.9.5 from PyPI.
* ``otp``: django-otp 1.7.5 from PyPI.

A venv is reused while its marker file records the same Python, the same requirements and (for ``ours``)
the same setup.cfg; otherwise it is made again. Runs with the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENVS = BENCH / ".venvs"

LIBS = {
    "ours": {"label": "django-multifactor (this tree)", "install": ["-e", str(ROOT)]},
    # 0.9.5 imports packaging (factors/fido2.py) without declaring it.
    "mf095": {"label": "django-multifactor 0.9.5", "install": ["django-multifactor==0.9.5", "packaging"]},
    "otp": {"label": "django-otp 1.7.5", "install": ["django-otp==1.7.5"]},
}

DEFAULT_DJANGO = "5.2.19"


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def tool_requirements(django_version: str | None = None) -> list[str]:
    """Django pinned to one version in every venv (the one this Python has, unless told), and the same
    gunicorn and redis client (the ones this Python has, if any, else the newest)."""
    django_version = django_version or _installed("django") or DEFAULT_DJANGO
    reqs = [f"Django=={django_version}"]
    for tool in ("gunicorn", "redis"):
        version = _installed(tool)
        reqs.append(f"{tool}=={version}" if version else tool)
    return reqs


def python_of(lib: str) -> Path:
    return VENVS / lib / "bin" / "python"


def bin_of(lib: str, name: str) -> Path:
    return VENVS / lib / "bin" / name


def _fingerprint(lib: str, reqs: list[str]) -> dict:
    spec = {
        "python": sys.version,
        "executable": os.path.realpath(sys.executable),
        "install": LIBS[lib]["install"],
        "tools": reqs,
    }
    if lib == "ours":
        spec["setup.cfg"] = hashlib.sha256((ROOT / "setup.cfg").read_bytes()).hexdigest()
    return spec


def ensure(lib: str, django_version: str | None = None, log=print) -> Path:
    """Create or reuse the venv of ``lib``; returns its python."""
    reqs = tool_requirements(django_version)
    venv = VENVS / lib
    marker = venv / ".bench-installed.json"
    wanted = _fingerprint(lib, reqs)
    if marker.exists() and python_of(lib).exists():
        try:
            if json.loads(marker.read_text()) == wanted:
                return python_of(lib)
        except ValueError:
            pass
    log(f"[venv] creating {venv} for {LIBS[lib]['label']} ...")
    if venv.exists():
        shutil.rmtree(venv)
    VENVS.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python_of(lib)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # One resolver run: the library and the pinned Django together (0.9.5 and django-otp accept it).
    subprocess.run([*pip, *LIBS[lib]["install"], *reqs], check=True)
    marker.write_text(json.dumps(wanted, indent=2))
    return python_of(lib)


def versions(lib: str) -> dict:
    """The versions a venv really has (asked from its own python)."""
    code = (
        "import json, sys; from importlib import metadata as m\n"
        "names = ['django', 'django-multifactor', 'django-otp', 'gunicorn', 'redis', 'pyotp', 'fido2']\n"
        "out = {'python': sys.version.split()[0]}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    # cwd: bench/, so that the working tree (and its egg-info) is not on the path of the peers' venvs.
    result = subprocess.run([str(python_of(lib)), "-c", code], check=True, capture_output=True, text=True, cwd=BENCH)
    return json.loads(result.stdout)


if __name__ == "__main__":
    for name in sys.argv[1:] or LIBS:
        ensure(name)
        print(name, versions(name))
