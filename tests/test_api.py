"""The top-level API: ``import pymsde`` gives the names users need, each the very object its
layer defines, imported on first use."""
import importlib
import subprocess
import sys

import pytest

import pymsde


def test_every_exported_name_is_the_object_its_layer_defines():
    for name, module in pymsde._EXPORTS.items():
        assert getattr(pymsde, name) is getattr(importlib.import_module(module), name), name
    assert set(pymsde._EXPORTS) <= set(dir(pymsde))


def test_exports_do_not_shadow_subpackages():
    import pkgutil
    subpackages = {m.name for m in pkgutil.iter_modules(pymsde.__path__)}
    assert not subpackages & set(pymsde._EXPORTS)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        pymsde.nonexistent  # noqa: B018


def test_import_pymsde_is_light():
    code = "import sys, pymsde; print('torch' in sys.modules, 'juliacall' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
