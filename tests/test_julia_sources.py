"""The Julia package, checked without Julia: every .jl file parses (tree-sitter-julia), the
layout is the standard one, dependency UUIDs agree between Project.toml, pymsde/juliapkg.json
and the General registry entries read when writing them (docs/julia.md), and every exported
function has a docstring."""
import json
import re
import tomllib
from pathlib import Path

import pytest

from pymsde.backends import julia as jl

ROOT = Path(__file__).resolve().parents[1]
JULIA = ROOT / "julia"
JULIAPKG = ROOT / "pymsde" / "juliapkg.json"

# UUIDs as registered in JuliaRegistries/General (<letter>/<Name>/Package.toml) and of the
# standard libraries; see docs/julia.md for where each was read.
REGISTRY_UUIDS = {
    "KernelAbstractions": "63c18a36-062a-441e-b654-da1e3ab1ce7c",
    "DLPack": "53c2dc0f-f7d5-43fd-8906-6c0220547083",
    "FFTW": "7a1cc6ca-52ef-59f5-83cd-3a7055c09341",
    "CUDA": "052768ef-5323-5732-b1bb-66c8b64840ba",
    "PythonCall": "6099a3de-0909-46bc-b1f4-468b9a2dfc0d",
    "LinearAlgebra": "37e2e46d-f89d-539d-b4ee-838fcccc9c8e",
    "Random": "9a3f8284-a2c9-5f02-9a11-845980a1fd5c",
    "Test": "8dfed614-e22c-5e08-85e1-65c5234f0b40",
}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _parser():
    ts = pytest.importorskip("tree_sitter")
    tj = pytest.importorskip("tree_sitter_julia")
    return ts.Parser(ts.Language(tj.language()))


def _syntax_errors(parser, source: bytes) -> list[int]:
    """Lines of ERROR or MISSING nodes (the check of ../shared/hooks/before-stop)."""
    bad, stack = [], [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            bad.append(node.start_point[0] + 1)
        stack.extend(node.children)
    return sorted(bad)


def _project():
    with open(JULIA / "Project.toml", "rb") as fp:
        return tomllib.load(fp)


def test_every_julia_file_parses():
    parser = _parser()
    files = sorted(JULIA.rglob("*.jl"))
    assert len(files) >= 8
    errors = {str(f.relative_to(ROOT)): _syntax_errors(parser, f.read_bytes()) for f in files}
    assert {f: lines for f, lines in errors.items() if lines} == {}


def test_the_parse_check_catches_syntax_errors():
    parser = _parser()
    assert _syntax_errors(parser, b"function f(x)\n    x + \nend\n") != []
    assert _syntax_errors(parser, b"y = [1, 2\n") != []
    assert _syntax_errors(parser, b"f(x) = x .+ 1\n") == []


def test_package_layout_is_standard():
    proj = _project()
    assert proj["name"] == "PyMSDEKernels" and UUID_RE.match(proj["uuid"])
    assert proj["uuid"] == jl.PACKAGE_UUID
    assert re.match(r"^\d+\.\d+\.\d+$", proj["version"])
    main = (JULIA / "src" / "PyMSDEKernels.jl").read_text()
    assert re.search(r"^module PyMSDEKernels$", main, re.M) and main.rstrip().endswith("end # module PyMSDEKernels")
    for inc in re.findall(r'include\("([^"]+)"\)', main):
        assert (JULIA / "src" / inc).is_file(), inc
    assert (JULIA / "test" / "runtests.jl").is_file()
    assert (JULIA / "README.md").is_file()
    # every dependency and weak dependency has a compat bound, julia too
    deps = {**proj["deps"], **proj.get("weakdeps", {})}
    assert set(proj["compat"]) == set(deps) | {"julia"}
    # extensions: triggers are weak deps, and the module file exists with the right name
    for ext, trigger in proj["extensions"].items():
        triggers = [trigger] if isinstance(trigger, str) else trigger
        assert set(triggers) <= set(proj["weakdeps"])
        src = (JULIA / "ext" / f"{ext}.jl").read_text()
        assert re.search(rf"^module {ext}$", src, re.M)
    assert set(proj["targets"]["test"]) <= set(proj["extras"])


def test_dependency_uuids_match_the_registry_and_juliapkg_json():
    proj = _project()
    for table in ("deps", "weakdeps", "extras"):
        for name, uuid in proj.get(table, {}).items():
            assert REGISTRY_UUIDS.get(name) == uuid, f"{table}.{name}"
    spec = json.loads(JULIAPKG.read_text())
    pkgs = spec["packages"]
    assert pkgs["PyMSDEKernels"]["uuid"] == proj["uuid"]
    assert pkgs["PyMSDEKernels"].get("dev") is True
    assert (JULIAPKG.parent / pkgs["PyMSDEKernels"]["path"]).resolve() == JULIA.resolve()
    for name, entry in pkgs.items():
        if name != "PyMSDEKernels":
            assert entry["uuid"] == proj["deps"][name], name
            assert entry["version"] == proj["compat"][name], name   # same bounds in both places


def test_juliapkg_reads_our_declaration():
    # juliapkg's own reader (no Julia, no network): the package path resolves to julia/
    deps = pytest.importorskip("juliapkg.deps")
    _, pkgs = deps.find_requirements()
    ours = {p.name: p for p in pkgs if p.name in ("PyMSDEKernels", "KernelAbstractions", "DLPack")}
    if "PyMSDEKernels" not in ours:
        pytest.skip("pymsde/juliapkg.json is not on juliapkg's search path in this install")
    assert Path(ours["PyMSDEKernels"].path).resolve() == JULIA.resolve() and ours["PyMSDEKernels"].dev
    assert ours["DLPack"].uuid == REGISTRY_UUIDS["DLPack"]


def test_every_export_has_a_docstring():
    src = "\n".join(p.read_text() for p in sorted((JULIA / "src").glob("*.jl")))
    exports = [n.strip() for block in re.findall(r"^export (.+?)(?:\n(?!\s)|\Z)", src, re.M | re.S)
               for n in block.replace("\n", " ").split(",")]
    assert len(exports) >= 15
    missing = [n for n in exports if not re.search(r'"""\s*\n\s*' + re.escape(n) + r"[({\s]", src)]
    assert missing == []


def test_python_wrappers_call_functions_the_package_defines():
    src = "\n".join(p.read_text() for p in sorted((JULIA / "src").glob("*.jl")))
    for name in jl._JULIA_FUNCTIONS:
        assert re.search(rf"^(?:function )?{re.escape(name)}\(", src, re.M), name
