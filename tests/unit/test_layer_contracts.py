"""The layer rules of [tool.importlinter] in pyproject.toml, which `./dev lint` checks.

The tree keeps them (`lint-imports`), every service is named where a contract names
services, the domain's list of forbidden packages covers every runtime dependency, and
each contract, as configured, fails on the violation it is there to catch (checked on
a small tree of the same shape, built in a temporary directory).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("registration", "commissions", "notifications", "portal")
LINT_IMPORTS = str(Path(sys.executable).parent / "lint-imports")


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def _config() -> dict[str, Any]:
    config: dict[str, Any] = _pyproject()["tool"]["importlinter"]
    return config


def _contracts() -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in _config()["contracts"]}


def _lint_imports(cwd: Path, pythonpath: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    only = [arg for contract in contracts for arg in ("--contract", contract)]
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", "--no-logo", *only],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_tree_keeps_every_contract() -> None:
    result = _lint_imports(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in result.stdout


def test_every_service_is_named_where_services_are() -> None:
    contracts = _contracts()
    assert set(SERVICES) == {
        path.name for path in (ROOT / "services").iterdir() if (path / "__init__.py").exists()
    }
    assert contracts["independent-services"]["modules"] == [f"services.{s}" for s in SERVICES]
    assert contracts["service-layers"]["containers"] == [f"services.{s}" for s in SERVICES]
    assert contracts["pure-domain"]["source_modules"] == ["services.*.domain"]
    assert contracts["service-layer-ports"]["source_modules"] == ["services.*.service_layer"]
    assert contracts["entrypoints-via-bootstrap"]["source_modules"] == ["services.*.entrypoints"]
    for service in SERVICES:
        for room in ("domain", "service_layer", "adapters", "entrypoints"):
            assert (ROOT / "services" / service / room / "__init__.py").exists(), (service, room)
        assert (ROOT / "services" / service / "bootstrap.py").exists(), service


def test_the_domain_may_import_no_runtime_dependency() -> None:
    forbidden = set(_contracts()["pure-domain"]["forbidden_modules"])
    provided = importlib.metadata.packages_distributions()
    for requirement in _pyproject()["project"]["dependencies"]:
        name = re.split(r"[=<>!~\[ ;]", requirement)[0].lower().replace("_", "-")
        modules = {
            module
            for module, dists in provided.items()
            if name in {d.lower().replace("_", "-") for d in dists} and not module.startswith("_")
        }
        assert modules, f"{requirement}: installed, providing no module?"
        assert modules <= forbidden, f"{requirement}: {sorted(modules - forbidden)} not forbidden"
    for layer in ("service-layer-ports",):
        assert {"aiokafka", "pymongo", "fastapi", "chassis.kafka", "chassis.consumer"} <= set(
            _contracts()[layer]["forbidden_modules"]
        )


def test_a_domain_imports_only_the_standard_library_and_shared() -> None:
    """What the forbidden list cannot say: no third-party package at all, listed or not."""
    graph = grimp.build_graph("services", "shared", "chassis", include_external_packages=True)
    third_party = set()
    for service in SERVICES:
        domain = f"services.{service}.domain"
        for module in {domain} | graph.find_descendants(domain):
            for imported in graph.find_modules_directly_imported_by(module):
                top = imported.split(".")[0]
                if top not in {"services", "shared", *sys.stdlib_module_names}:
                    third_party.add(f"{module} -> {imported}")
    assert third_party == set()


# --- each contract catches what it is there for, on a small tree of the same shape -------

CLEAN = {
    "shared/events.py": "import pydantic\n",
    "chassis/records.py": "from shared import events\n",
    "chassis/kafka.py": "import aiokafka\nfrom chassis import records\n",
    "chassis/consumer.py": "from chassis import kafka\n",
    "chassis/tracing.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
    "    import fastapi\n",
    "devkit/tool.py": "from services.registration import bootstrap\n",
    "services/{s}/domain/model.py": "import datetime\nfrom shared import events\n",
    "services/{s}/service_layer/ports.py": "from chassis import records, tracing\n"
    "from services.{s}.domain import model\n",
    "services/{s}/adapters/store.py": "import pymongo\nfrom chassis import kafka\n"
    "from services.{s}.service_layer import ports\n",
    "services/{s}/bootstrap.py": "import fastapi\nfrom services.{s}.adapters import store\n"
    "from services.{s}.entrypoints import routes\n",
    "services/{s}/entrypoints/routes.py": "import fastapi\nfrom services.{s}.service_layer import "
    "ports\nfrom services.{s}.domain import model\n",
    "services/{s}/entrypoints/api.py": "from services.{s} import bootstrap\n",
}

VIOLATIONS = {
    # (file, added import): the contract it breaks
    ("services/{s}/domain/model.py", "import pymongo"): "pure-domain",
    ("services/{s}/domain/model.py", "import pydantic"): "pure-domain",
    ("services/{s}/domain/model.py", "from chassis import records"): "pure-domain",
    ("services/{s}/service_layer/ports.py", "from chassis import consumer"): "service-layer-ports",
    ("services/{s}/service_layer/ports.py", "import fastapi"): "service-layer-ports",
    ("services/{s}/entrypoints/routes.py", "from services.{s}.adapters import store"): (
        "entrypoints-via-bootstrap"
    ),
    ("services/{s}/service_layer/ports.py", "from services.{s}.adapters import store"): (
        "service-layers"
    ),
    ("services/{s}/domain/model.py", "from services.{s}.service_layer import ports"): (
        "service-layers"
    ),
    ("services/{s}/domain/model.py", "from services.{other}.domain import model"): (
        "independent-services"
    ),
    ("chassis/records.py", "from services.registration.domain import model"): "base",
    ("shared/events.py", "from chassis import records"): "base",
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _write_tree(root: Path, extra: tuple[str, str] | None) -> None:
    files: dict[str, str] = {}
    for template, text in CLEAN.items():
        for service in SERVICES if "{s}" in template else ("",):
            other = SERVICES[(SERVICES.index(service) + 1) % len(SERVICES)] if service else ""
            files[template.format(s=service)] = text.format(s=service, other=other)
            if extra is not None and extra[0] == template:
                files[template.format(s=service)] += extra[1].format(s=service, other=other) + "\n"
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for directory in [p for p in root.rglob("*") if p.is_dir()]:
        (directory / "__init__.py").touch()
    config = _config()
    lines = ["[tool.importlinter]"]
    lines += [f"{k} = {_toml(v)}" for k, v in config.items() if k != "contracts"]
    for contract in config["contracts"]:
        lines.append("[[tool.importlinter.contracts]]")
        # The tree's own exceptions name modules this small tree does not have.
        lines.append('unmatched_ignore_imports_alerting = "none"')
        lines += [f"{k} = {_toml(v)}" for k, v in contract.items()]
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")


def test_a_tree_of_the_same_shape_keeps_every_contract(tmp_path: Path) -> None:
    _write_tree(tmp_path, None)
    result = _lint_imports(tmp_path, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("violation", "contract"), VIOLATIONS.items())
def test_a_violation_fails_its_contract(
    tmp_path: Path, violation: tuple[str, str], contract: str
) -> None:
    _write_tree(tmp_path, violation)
    result = _lint_imports(tmp_path, tmp_path, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout, result.stdout
