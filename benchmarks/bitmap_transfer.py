r"""A bitmap_cnn trained on Google's numpy_bitmap images, classifying OUR renders of stroke drawings of the
same classes (quickdraw_tf.data.bitmap, through quickdraw_tf.Predictor), beside its top-1 on Google's own
bitmaps (the model's eval_results.json from evaluate.py --split=test):

  python benchmarks/bitmap_transfer.py --model_dir=runs/bitmap_cnn \
      --input='../shared/data/quickdraw/raw/*/*.ndjson,../shared/data/quickdraw/simplified/*/*.ndjson'

Every stroke drawing of the model's classes is used once (distinct key_ids; a raw drawing and its
simplified twin give the same bitmap). None of them was used to train the bitmap model, which saw
Google's bitmaps only.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/bitmap_transfer.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from quickdraw_tf.data import formats
from quickdraw_tf.inference import prediction_io
from quickdraw_tf.inference.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--input", required=True)
    args = parser.parse_args()
    predictor = Predictor.load(args.model_dir)
    wanted, seen, drawings = set(predictor.class_names), set(), []
    for record in prediction_io.read_records(prediction_io.expand_inputs(args.input.split(","))):
        try:
            drawing = formats.parse_record(record)
        except ValueError:
            continue
        if drawing.word in wanted and drawing.key_id not in seen:
            seen.add(drawing.key_id)
            drawings.append(drawing)
    guesses = predictor.predict(drawings, top_k=3, batch_size=256)
    top1 = np.mean([g[0][0] == d.word for d, g in zip(drawings, guesses, strict=True)])
    top3 = np.mean([d.word in [w for w, _ in g] for d, g in zip(drawings, guesses, strict=True)])
    per_class = collections.Counter(d.word for d in drawings)
    print(f"{len(drawings)} stroke drawings rendered to 28x28: {dict(sorted(per_class.items()))}")
    print(f"bitmap_cnn on our renders: top-1 {top1:.4f}  top-3 {top3:.4f}")
    with open(os.path.join(args.model_dir, "eval_results.json")) as f:
        saved = json.load(f)
    print(
        f"bitmap_cnn on Google's bitmaps ({saved['split']} split, {saved['num_examples']}): "
        f"top-1 {saved['top1']:.4f}  top-3 {saved['top3']:.4f}"
    )


if __name__ == "__main__":
    main()
