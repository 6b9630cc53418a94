"""quickdraw-tf: from raw Quick, Draw! drawings to a trained, served doodle recognizer."""

from setuptools import find_packages, setup

setup(
    name="quickdraw-tf",
    version="0.1.0",
    description="TensorFlow 2 / Keras 3 toolkit for Google's Quick, Draw! doodle data",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["quickdraw_tf", "quickdraw_tf.*", "beam_jobs", "beam_jobs.*"]),
    package_data={"quickdraw_tf": ["categories.txt"], "quickdraw_tf.serve": ["static/*", "static/ort/*"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
        "apache-beam>=2.70,<2.80",
        "tensorflow-datasets>=4.9,<4.10",
        "tensorboard>=2.21,<2.22",
        "absl-py>=2.1,<3",
        "numpy>=1.26,<3",
        "matplotlib>=3.8,<4",
        "pillow>=10,<13",
        "google-crc32c>=1.5,<2",
        "orjson>=3.9,<4",
        "fastapi>=0.110",
        "uvicorn>=0.29",
        "prometheus-client>=0.20",
        "httpx>=0.27",
    ],
    extras_require={
        "test": [
            "pytest>=8,<10",
            "pytest-xdist>=3.5,<4",
            # pyproject.toml's per-test timeout: a test that hangs fails with its stacks instead of holding CI
            "pytest-timeout>=2.3,<3",
            "ruff>=0.6",
            "cairocffi>=1.6,<2",
            "playwright>=1.44",
            # benchmarks.process_memory (benchmarks/tests/test_convert_memory.py): RSS of a process tree;
            # the device check's per-row memory ceiling (benchmarks/bounded_process.py)
            "psutil>=5.9",
        ],
        # model.onnx (training/onnx_export.py, python -m quickdraw_tf.export_onnx) and ONNX Runtime in the
        # Predictor and the server (--engine=onnxruntime). tf2onnx 1.17 is the release that runs on
        # TensorFlow 2.21 and numpy 2; ONNX Runtime 1.2x reads the opset-18 graphs it writes.
        "onnx": ["tf2onnx>=1.17,<1.18", "onnx>=1.17,<1.24", "onnxruntime>=1.20,<2"],
        # python -m beam_jobs.make_tfrecords --runner=DaskRunner (Beam's DaskRunner on dask.distributed);
        # the versions Beam's own "dask" extra asks for.
        "dask": ["dask[distributed]>=2024.4.2"],
        # benchmarks/train_vs_peers.py's PyTorch peer only (never needed by the tests), pinned so that its
        # figures name one torch. On a CPU-only machine install PyTorch's CPU build first (PyPI's default
        # wheel carries CUDA): pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
        "bench": ["torch==2.13.0"],
    },
)
