"""The one training loop under MirroredStrategy (2 logical CPUs), MultiWorkerMirroredStrategy (2 worker
processes on 127.0.0.1) and a kill -9 in the middle of training. Each runs in fresh processes: logical
devices and collective ops are fixed once per process."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.harness import hparams_flags

pytestmark = pytest.mark.integration  # every test trains, most in subprocesses

TINY_FLAGS = [
    *hparams_flags("rnn"),
    "--batch_size=8",
    "--shuffle_buffer=50",
    "--bucket_boundaries=32,64",
    "--log_every=2",
]

MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from quickdraw_tf.training import trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import tiny_config
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = tiny_config(
    sys.argv[1], sys.argv[2], steps=6, checkpoint_every=3, log_every=2, num_summary_drawings=8,
    input=InputConfig(batch_size=8, shuffle_buffer=50, bucket_boundaries=(32, 64)),
)
metrics = trainer.train(config, strategy)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, **metrics}))
"""


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1", "PYTHONPATH": os.getcwd()}


def test_mirrored_strategy_over_two_logical_cpus(tfrecord_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, tfrecord_dir, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["replicas"] == 2 and 0 <= summary["top1"] <= 1
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")
    assert (tmp_path / "export" / "saved_model.pb").exists()


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow  # ~50 s on 2 shared cores: two TF processes plus gRPC collectives
def test_multi_worker_mirrored_strategy_with_two_processes(tfrecord_dir, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    command = [
        sys.executable,
        "-m",
        "quickdraw_tf.train",
        "--strategy=multi_worker",
        f"--data_dir={tfrecord_dir}",
        f"--model_dir={tmp_path}",
        "--train_steps=6",
        "--eval_every=6",
        "--checkpoint_every=3",
        *TINY_FLAGS,
    ]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                command,
                env={**_env(), "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outputs = [p.communicate(timeout=400) for p in processes]
    finally:
        for p in processes:
            p.kill()
    for p, (_, stderr) in zip(processes, outputs, strict=True):
        assert p.returncode == 0, stderr[-3000:]
        assert "finished at step 6" in stderr
    assert "training rnn on 2 replica(s)" in outputs[0][1]
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-6")
    assert (tmp_path / "export" / "saved_model.pb").exists() and (tmp_path / "train").is_dir()
    assert not (tmp_path / "workertemp").exists()  # worker 1 saved into temporary dirs, then removed them


def _train_command(data_dir, model_dir, train_steps):
    return [
        sys.executable,
        "-m",
        "quickdraw_tf.train",
        f"--data_dir={data_dir}",
        f"--model_dir={model_dir}",
        f"--train_steps={train_steps}",
        "--checkpoint_every=2",
        "--eval_every=100000",
        *TINY_FLAGS,
    ]


def test_resume_after_kill_9(tfrecord_dir, tmp_path):
    checkpoint_dir = str(tmp_path / "checkpoints")
    process = subprocess.Popen(
        _train_command(tfrecord_dir, tmp_path, 100000),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while tf.train.latest_checkpoint(checkpoint_dir) is None:
            assert process.poll() is None and time.time() < deadline, "no checkpoint before the deadline"
            time.sleep(0.5)
        time.sleep(1.0)  # let it get on with training past the checkpoint
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    step = int(tf.train.latest_checkpoint(checkpoint_dir).rsplit("-", 1)[1])
    result = subprocess.run(
        _train_command(tfrecord_dir, tmp_path, step + 4),
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"restored checkpoint at step {step} " in result.stderr
    assert f"finished at step {step + 4}" in result.stderr
    assert tf.train.latest_checkpoint(checkpoint_dir).endswith(f"ckpt-{step + 4}")
