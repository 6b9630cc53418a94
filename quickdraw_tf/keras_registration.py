"""`import quickdraw_tf` registers the project's Keras classes, without importing TensorFlow itself.

keras.models.load_model(".../model.keras") needs the custom classes (BitmapCNN, RnnClassifier, ...)
registered, i.e. quickdraw_tf.models imported. Importing it from quickdraw_tf/__init__.py would make
every `import quickdraw_tf` pay for TensorFlow (~5-25 s here), including the Beam job's workers, which
never import it. So the import is deferred: a meta-path finder watches the top-level `keras` and
`tensorflow` imports (TensorFlow imports Keras while it is itself being imported, and the reverse) and
imports quickdraw_tf.models as soon as the last of the two finishes. When Keras is already imported,
the classes are registered at once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

_WATCHED = ("keras", "tensorflow")
_loading: set[str] = set()


def _register() -> None:
    try:
        importlib.import_module("quickdraw_tf.models")
    except Exception as error:  # noqa: BLE001 - never break the user's own `import keras`
        warnings.warn(f"quickdraw_tf could not register its Keras classes: {error}", stacklevel=2)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the loaders of `keras` and `tensorflow` so that registration runs after both are done."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _WATCHED or fullname in _loading:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            _loading.add(fullname)
            try:
                original(module)
            finally:
                _loading.discard(fullname)
            if not _loading and "keras" in sys.modules:
                uninstall()
                _register()

        spec.loader.exec_module = exec_module
        return spec


_FINDER = _Finder()


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install() -> None:
    """Registers now if Keras is loaded, else once it is (idempotent)."""
    if "keras" in sys.modules and not _loading:
        _register()
    elif _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
