"""Benchmarks: run each as a module (python -m benchmarks.convert_bench, from the checkout's root) or as a
file (python benchmarks/convert_bench.py); run as a file, a script puts its checkout first on sys.path."""
