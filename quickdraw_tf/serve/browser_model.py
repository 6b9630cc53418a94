"""The model as the drawing page runs it in the browser: model.json and model.onnx, and the static page.

model.json tells the page (static/engine.js) what model/model.onnx is: its name, its classes (line
number = class index) and its preprocessing.json (how static/preprocess.js prepares a drawing). The
server answers both under /model/ for a single model whose run has a model.onnx; write_static_page
puts the page, its scripts, the WASM runtime and the model into one folder that any static file host
serves as it is.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shutil
import tempfile

import tensorflow as tf

from quickdraw_tf.data import output_files
from quickdraw_tf.training import onnx_export, run_dir

STATIC_DIR = importlib.resources.files("quickdraw_tf.serve") / "static"

MODEL_FOLDER = "model"
MANIFEST_FILE = "model.json"
RUNTIME_FOLDER = "ort"
# What `make web` copies from the onnxruntime-web npm package (package.json pins its version).
RUNTIME_FILES = ("ort.bundle.js", "ort-wasm-simd-threaded.wasm")
PAGE_FILES = ("app.js", "app.css", "engine.js", "preprocess.js")


def onnx_file(model_dir: str) -> str | None:
    """model_dir/model.onnx when it exists, else None."""
    path = run_dir.path(model_dir, run_dir.ONNX_FILE)
    return path if tf.io.gfile.exists(path) else None


def read_bytes(path: str) -> bytes:
    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def manifest(model_dir: str, name: str | None = None, served: bool = False) -> dict:
    """model.json's content. `served`: a server answers beside it (v1/classes, v1/complete)."""
    config = run_dir.read_config(model_dir, required=False)
    return {
        "model": name or (config.model if config else "model"),
        "classes": run_dir.read_classes(model_dir),
        "preprocessing": run_dir.read_preprocessing(model_dir).to_dict(),
        "server": served,
    }


def runtime_dir() -> str:
    """static/ort/, where `make web` puts ONNX Runtime Web; FileNotFoundError (one line) if it has not."""
    folder = os.path.join(str(STATIC_DIR), RUNTIME_FOLDER)
    missing = [name for name in RUNTIME_FILES if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise FileNotFoundError(
            f"no ONNX Runtime Web in {folder} ({', '.join(missing)} missing): run `make web` (npm ci)"
        )
    return folder


def write_static_page(model_dir: str, output_dir: str, overwrite: bool = False) -> list[str]:
    """Writes output_dir: index.html, static/ (the page's scripts and styles, static/ort/ the runtime)
    and model/ (model.onnx, model.json). Returns the files written, relative to output_dir.

    The folder is made beside output_dir and renamed into place, so a failure leaves no half-written
    page. An existing output_dir is replaced only with `overwrite`."""
    output_files.refuse_link(output_dir)
    if os.path.exists(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir} exists: pass --overwrite to replace it")
    onnx_path = onnx_file(model_dir)
    if onnx_path is None:
        raise FileNotFoundError(onnx_export.missing_message(model_dir))
    runtime = runtime_dir()
    content = manifest(model_dir)
    parent = os.path.dirname(os.path.abspath(output_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(output_dir))}.", dir=parent)
    try:
        os.makedirs(os.path.join(staging, "static", RUNTIME_FOLDER))
        os.makedirs(os.path.join(staging, MODEL_FOLDER))
        shutil.copyfile(os.path.join(str(STATIC_DIR), "index.html"), os.path.join(staging, "index.html"))
        for name in PAGE_FILES:
            shutil.copyfile(os.path.join(str(STATIC_DIR), name), os.path.join(staging, "static", name))
        for name in RUNTIME_FILES:
            target = os.path.join(staging, "static", RUNTIME_FOLDER, name)
            shutil.copyfile(os.path.join(runtime, name), target)
        tf.io.gfile.copy(onnx_path, os.path.join(staging, MODEL_FOLDER, run_dir.ONNX_FILE))
        with open(os.path.join(staging, MODEL_FOLDER, MANIFEST_FILE), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=1)
        if os.path.exists(output_dir):
            shutil.rmtree(output_dir)
        os.rename(staging, output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(
        os.path.relpath(os.path.join(folder, name), output_dir)
        for folder, _, names in os.walk(output_dir) for name in names
    )
