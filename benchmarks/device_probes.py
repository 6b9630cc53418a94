"""The measurements of benchmarks/device_check.py, each on the trainer's own code: the model, optimizer
and training step of quickdraw_tf.training.trainer (its TrainState, train_step_fn and make_train_loop,
the loop `python -m quickdraw_tf.train` runs), fed by quickdraw_tf.training.input_pipeline.

Every function takes a TrainConfig and returns a dict of plain values for the JSON; none catches errors
(device_check records an exception as that row's error and goes on).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import math
import time

import keras
import numpy as np
import tensorflow as tf

from quickdraw_tf.training import input_pipeline, trainer

NOT_ON_GPU = "not on GPU"
CUDNN_PREFIX = "CudnnRNN"


def gpu_name() -> str | None:
    """The first GPU's name, or None on a machine without one."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)


def supported_precisions() -> dict[str, str]:
    """mixed precision -> '' where this device runs it fast, else why not (a row is skipped for it)."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        reason = "not on GPU: CPUs have no fast float16/bfloat16 math"
        return {"off": "", "float16": reason, "bfloat16": reason}
    major, minor = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
    bfloat16 = "" if major >= 8 else f"bfloat16 needs compute capability >= 8.0, this GPU has {major}.{minor}"
    return {
        "off": "",
        "float16": "" if major >= 7 else "float16 tensor cores need >= 7.0",
        "bfloat16": bfloat16,
    }


@contextlib.contextmanager
def row_session(mixed_precision: str):
    """A clean Keras session (the previous row's graphs and buffers released) under the global dtype
    policy trainer.train sets for a run; the policy is restored afterwards. clear_session comes first:
    it also resets the policy."""
    keras.backend.clear_session()
    gc.collect()
    with trainer.dtype_policy(mixed_precision):
        yield


def _fresh_state(config: trainer.TrainConfig, num_classes: int) -> trainer.TrainState:
    """A new model + optimizer, seeded as trainer.train seeds them."""
    keras.utils.set_random_seed(config.seed)
    return trainer.TrainState.create(config, num_classes)


@contextlib.contextmanager
def _generic_lstm_on_cpu():
    """Keras picks the cuDNN LSTM whenever a GPU is visible, and soft placement would then quietly run
    it on the GPU inside tf.device('/CPU:0'): while this is active, Keras sees no GPU."""
    # By module path: the package exports a function named rnn that hides the module.
    keras_tf_rnn = importlib.import_module("keras.src.backend.tensorflow.rnn")
    gpu_check = keras_tf_rnn._is_gpu_available
    keras_tf_rnn._is_gpu_available = lambda: False
    try:
        yield
    finally:
        keras_tf_rnn._is_gpu_available = gpu_check


def _op_types(graph_def: tf.compat.v1.GraphDef) -> list[str]:
    """Every op type in the graph and in the functions it calls (while bodies, gradients, ...)."""
    types = [node.op for node in graph_def.node]
    for function in graph_def.library.function:
        types += [node.op for node in function.node_def]
    return types


def cudnn_probe(config: trainer.TrainConfig, num_classes: int) -> dict:
    """Traces the training step (not run) and counts the cuDNN RNN ops in its graph.

    The batch spec is the pipeline's: [None, None, 3] ink with lengths, so the LSTMs get the
    right-padded mask the model builds from them; cuDNN's CudnnRNNV3 takes those lengths, and a
    mask that cuDNN could not take would show here as the generic while loop instead.
    """
    with row_session(config.mixed_precision):
        state = _fresh_state(config, num_classes)
        step = tf.function(trainer.train_step_fn(state, config))
        inputs = {
            "ink": tf.TensorSpec([None, None, 3], tf.float32),
            "length": tf.TensorSpec([None], tf.int32),
        }
        graph = step.get_concrete_function(inputs, tf.TensorSpec([None], tf.int64)).graph
        types = _op_types(graph.as_graph_def())
    lstm_layers = [
        layer.name for layer in state.model._flatten_layers() if isinstance(layer, keras.layers.LSTM)
    ]
    cudnn_ops = sorted({t for t in types if t.startswith(CUDNN_PREFIX)})
    counts = {t: types.count(t) for t in cudnn_ops}
    on_gpu = bool(tf.config.list_logical_devices("GPU"))
    result = {
        "lstm_layers": len(lstm_layers),
        "cudnn_ops": counts,
        "while_loops": types.count("While") + types.count("StatelessWhile"),
    }
    if not on_gpu:
        result.update(status="ok", answer=NOT_ON_GPU)
    elif counts and sum(n for t, n in counts.items() if "Backprop" not in t) >= len(lstm_layers):
        result.update(status="ok", answer=f"cuDNN: {', '.join(f'{t} x{n}' for t, n in counts.items())}")
    else:
        result.update(status="fail", answer="generic loop: the LSTMs fell back from cuDNN")
    return result


def one_step_on_each_device(config: trainer.TrainConfig, num_classes: int, batch, tolerance: float) -> dict:
    """Loss and gradient norm of one float32 step, same weights and batch, on the GPU and on the CPU.

    Eager on both sides; the GPU runs the cuDNN LSTM, the CPU the generic loop. TF32 is turned off for
    the comparison (it rounds float32 matmuls on Ampere and later). Without a GPU the CPU is compared
    with itself.
    """
    with row_session("off"):
        state = _fresh_state(config, num_classes)
    inputs, labels = batch
    gpu = bool(tf.config.list_logical_devices("GPU"))

    def loss_and_norm(device: str) -> tuple[float, float]:
        with tf.device(device), tf.GradientTape() as tape:
            logits = state.model(inputs, training=False)
            loss = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
        grads = tape.gradient(loss, state.model.trainable_variables)
        return float(loss), float(tf.linalg.global_norm(grads))

    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    tf.config.experimental.enable_tensor_float_32_execution(False)
    try:
        device_loss, device_norm = loss_and_norm("/GPU:0" if gpu else "/CPU:0")
        with _generic_lstm_on_cpu():
            cpu_loss, cpu_norm = loss_and_norm("/CPU:0")
    finally:
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
    loss_diff = abs(device_loss - cpu_loss) / max(abs(cpu_loss), 1e-12)
    norm_diff = abs(device_norm - cpu_norm) / max(abs(cpu_norm), 1e-12)
    close = loss_diff <= tolerance and norm_diff <= 10 * tolerance
    return {
        "status": "ok" if close else "fail",
        "answer": ("equal" if close else "DIFFERENT") + ("" if gpu else f" ({NOT_ON_GPU}: CPU vs CPU)"),
        "device_loss": device_loss,
        "cpu_loss": cpu_loss,
        "loss_relative_difference": loss_diff,
        "device_grad_norm": device_norm,
        "cpu_grad_norm": cpu_norm,
        "grad_norm_relative_difference": norm_diff,
        "tolerance": tolerance,
    }


def _sync(state: trainer.TrainState) -> int:
    return int(state.step.numpy())  # reading the step waits for the steps before it


def _peak_memory_mb() -> float | None:
    if not tf.config.list_logical_devices("GPU"):
        return None
    return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20


def _reset_peak_memory() -> None:
    if tf.config.list_logical_devices("GPU"):
        tf.config.experimental.reset_memory_stats("GPU:0")


def _train_dataset(config: trainer.TrainConfig, strategy, cached_batches: int):
    """The trainer's distributed training input, or (cached_batches > 0) that many of its batches
    held in memory and repeated: the same model fed without any input work."""
    if not cached_batches:
        return trainer.distributed_dataset(strategy, config, config.input, "train", training=True)
    real = input_pipeline.make_dataset(config.data_dir, "train", config.input, training=True)
    cached = real.take(cached_batches).cache().repeat().prefetch(tf.data.AUTOTUNE)
    return strategy.experimental_distribute_dataset(cached)


def throughput(
    config: trainer.TrainConfig,
    num_classes: int,
    warmup_steps: int,
    min_seconds: float,
    max_steps: int,
    cached_batches: int = 0,
) -> dict:
    """Training examples/s of the trainer's loop after warm-up, input pipeline included.

    Warm-up (tracing, XLA compilation, cuDNN autotuning, filling the shuffle buffer and any cache)
    is timed apart; a short calibration chunk sizes the timed chunk to about min_seconds.
    """
    strategy = tf.distribute.get_strategy()
    with row_session(config.mixed_precision):
        state = _fresh_state(config, num_classes)
        compute_dtype = state.model.dtype_policy.compute_dtype
        if config.jit_compile:
            trainer.check_jit_support(state.model)
        iterator = iter(_train_dataset(config, strategy, cached_batches))
        loop = trainer.make_train_loop(strategy, state, config)
        _reset_peak_memory()
        started = time.perf_counter()
        loop(iterator, tf.constant(max(warmup_steps, cached_batches), tf.int32))
        _sync(state)
        warmup_seconds = time.perf_counter() - started
        calibration = max(2, warmup_steps // 2)
        started = time.perf_counter()
        loop(iterator, tf.constant(calibration, tf.int32))
        _sync(state)
        per_step = (time.perf_counter() - started) / calibration
        steps = int(min(max_steps, max(calibration, min_seconds / max(per_step, 1e-6))))
        started = time.perf_counter()
        totals = loop(iterator, tf.constant(steps, tf.int32))
        _sync(state)
        seconds = time.perf_counter() - started
    count = float(totals["count"])
    loss = float(totals["loss"]) / max(count, 1.0)
    return {
        "status": "ok" if math.isfinite(loss) else "fail",
        "examples_per_second": count / seconds,
        "step_ms": 1000 * seconds / steps,
        "timed_steps": steps,
        "warmup_seconds": warmup_seconds,
        "peak_memory_mb": _peak_memory_mb(),
        "loss": loss,
        "compute_dtype": compute_dtype,
    }


def finite_losses(config: trainer.TrainConfig, num_classes: int, steps: int, chunks: int) -> dict:
    """A mixed-precision run's mean loss per chunk over `steps` steps: all finite, or a fail."""
    strategy = tf.distribute.get_strategy()
    with row_session(config.mixed_precision):
        state = _fresh_state(config, num_classes)
        compute_dtype = state.model.dtype_policy.compute_dtype
        iterator = iter(_train_dataset(config, strategy, 0))
        loop = trainer.make_train_loop(strategy, state, config)
        losses = []
        per_chunk = max(1, steps // chunks)
        while _sync(state) < steps:
            totals = loop(iterator, tf.constant(min(per_chunk, steps - _sync(state)), tf.int32))
            losses.append(float(totals["loss"]) / max(float(totals["count"]), 1.0))
        scale = getattr(state.optimizer, "dynamic_scale", None)
    finite = bool(np.all(np.isfinite(losses)))
    return {
        "status": "ok" if finite else "fail",
        "answer": f"finite over {steps} steps" if finite else f"NON-FINITE within {steps} steps",
        "chunk_losses": losses,
        "loss_scale": None if scale is None else float(scale.numpy()),
        "compute_dtype": compute_dtype,
    }


def with_input(config: trainer.TrainConfig, **changes) -> trainer.TrainConfig:
    """The config with its InputConfig changed (batch_size, static_shapes, bucket_boundaries, ...)."""
    return dataclasses.replace(config, input=dataclasses.replace(config.input, **changes))
