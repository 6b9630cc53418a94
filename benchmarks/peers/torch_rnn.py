r"""The tutorial recognizer (configs/rnn.flags) in plain PyTorch, as a PyTorch user would write it: the
baseline that benchmarks/train_vs_peers.py measures ours against. Needs torch (`pip install -e .[bench]`).

  python benchmarks/peers/torch_rnn.py --drawings=DRAWINGS.npz --batch_size=8 --steps=200

DRAWINGS.npz (written by train_vs_peers.py from a make_tfrecords train split, exactly as stored):
`ink` float32 [N_points, 3] (delta x, delta y, end of stroke) of all drawings one after the other,
`lengths` int [N], `labels` int [N], `num_classes`. The model: Conv1d 48/64/96 (kernels 5/5/3, 'same',
linear) → 3-layer bidirectional LSTM-128 over pack_padded_sequence → sum over the valid steps → linear;
dropout 0.3 before every conv but the first, before the LSTM and between its layers, and before the
logits; Adam 1e-4, gradient norm clipped at 9.0. Batches: random drawings, padded to their longest.
Prints one JSON line: {"examples_per_second": ..., "steps": ..., "batch_size": ..., "threads": ...}.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence


class RnnClassifier(nn.Module):
    def __init__(
        self,
        num_classes: int,
        num_conv=(48, 64, 96),
        conv_len=(5, 5, 3),
        num_nodes=128,
        num_layers=3,
        dropout=0.3,
    ):
        super().__init__()
        convs, channels = [], 3
        for filters, width in zip(num_conv, conv_len, strict=True):
            convs.append(nn.Conv1d(channels, filters, width, padding=width // 2))
            channels = filters
        self.convs = nn.ModuleList(convs)
        self.dropout = nn.Dropout(dropout)
        self.lstm = nn.LSTM(
            channels, num_nodes, num_layers, batch_first=True, bidirectional=True, dropout=dropout
        )
        self.logits = nn.Linear(2 * num_nodes, num_classes)

    def forward(self, ink: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = ink.transpose(1, 2)  # [B, 3, T]: Conv1d wants channels first
        for i, conv in enumerate(self.convs):
            x = conv(self.dropout(x) if i else x)
        x = self.dropout(x.transpose(1, 2))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        outputs, _ = self.lstm(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True)  # zeros past each length
        return self.logits(self.dropout(outputs.sum(dim=1)))


def load_drawings(path: str) -> tuple[list[torch.Tensor], torch.Tensor, int]:
    data = np.load(path)
    inks = torch.split(torch.from_numpy(data["ink"]), data["lengths"].tolist())
    return list(inks), torch.from_numpy(data["labels"].astype(np.int64)), int(data["num_classes"])


def batches(inks: list[torch.Tensor], labels: torch.Tensor, batch_size: int, seed: int):
    """Random batches forever, each padded to its longest drawing."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(inks), generator=generator)
        for start in range(0, len(order) - batch_size + 1, batch_size):
            index = order[start : start + batch_size]
            chosen = [inks[i] for i in index]
            lengths = torch.tensor([len(ink) for ink in chosen])
            yield pad_sequence(chosen, batch_first=True), lengths, labels[index]


def examples_per_second(drawings: str, batch_size: int, steps: int, warmup: int = 5, seed: int = 0) -> float:
    """Trains `warmup` + `steps` steps and returns the examples/s of the last `steps`."""
    torch.manual_seed(seed)
    inks, labels, num_classes = load_drawings(drawings)
    model = RnnClassifier(num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    stream = batches(inks, labels, batch_size, seed)
    for step in range(warmup + steps):
        if step == warmup:
            started = time.perf_counter()
        ink, lengths, label = next(stream)
        optimizer.zero_grad()
        loss = loss_fn(model(ink, lengths), label)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 9.0)
        optimizer.step()
    return steps * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawings", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    speed = examples_per_second(args.drawings, args.batch_size, args.steps)
    result = {"examples_per_second": speed, "steps": args.steps, "batch_size": args.batch_size}
    print(json.dumps({**result, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
