"""What the tools write is safe: data/output_files.py (no write through a planted link, never half a
file), data/file_names.py (names from words cannot collide or escape), the top-k CSV (no cell a
spreadsheet runs), and every writer of predict, render, generate and a training run's files tried
with planted links. The commands that need a trained model are in tests/test_hostile_model_dirs.py."""

from __future__ import annotations

import csv
import json
import os
import stat
import urllib.parse

import pytest

from quickdraw_tf import render
from quickdraw_tf.data import file_names, formats, layout, output_files, preprocess
from quickdraw_tf.inference import prediction_io
from quickdraw_tf.training import run_dir
from quickdraw_tf.training.input_pipeline import InputConfig
from quickdraw_tf.training.train_config import TrainConfig
from tests import sample

BELT = os.path.join(sample.SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset", "belt.ndjson")
ISSUE_WORDS = ["猫", "狗", "cat's", "cat_s", ".."]
TRUNCATED = InputConfig(max_length=9)


def plant(path, victim) -> None:
    """A symbolic link at `path` to `victim`, a file someone else cares about."""
    victim.write_text("precious\n")
    os.symlink(victim, path)


def untouched(path, victim) -> bool:
    return victim.read_text() == "precious\n" and os.path.islink(path)


# ---------------------------------------------------------------------------------------------------
# output_files


def test_a_planted_link_is_refused_in_one_line_and_its_target_kept(tmp_path):
    target, victim = tmp_path / "out.csv", tmp_path / "victim.txt"
    plant(target, victim)
    with pytest.raises(output_files.OutputPathError, match=r"out\.csv is a symbolic link; refusing") as error:
        output_files.write_text(str(target), "new\n")
    assert "\n" not in str(error.value) and untouched(target, victim)
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling.csv")  # a dangling link too: O_CREAT would make it
    with pytest.raises(output_files.OutputPathError, match="symbolic link"):
        output_files.write_bytes(str(tmp_path / "dangling.csv"), b"x")
    assert not (tmp_path / "nowhere").exists()
    assert sorted(os.listdir(tmp_path)) == ["dangling.csv", "out.csv", "victim.txt"]  # no temporary left


def test_a_link_planted_while_writing_is_refused_before_the_rename(tmp_path):
    target, victim = tmp_path / "out.csv", tmp_path / "victim.txt"
    with pytest.raises(output_files.OutputPathError, match="symbolic link"):
        with output_files.replacing(str(target), text=True) as f:
            f.write("new\n")
            plant(target, victim)
    assert untouched(target, victim) and sorted(os.listdir(tmp_path)) == ["out.csv", "victim.txt"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with output_files.replacing(str(target), text=True) as f:
            f.write("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["out.csv"]


def test_the_temporary_name_is_fresh_and_never_follows_a_link(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    taken = output_files.temporary_name(str(tmp_path / "out.csv"))
    plant(taken, victim)
    monkeypatch.setattr(output_files, "temporary_name", lambda path: taken)
    with pytest.raises(FileExistsError):  # O_EXCL | O_NOFOLLOW: a name already there is never opened
        output_files.write_text(str(tmp_path / "out.csv"), "new\n")
    assert untouched(taken, victim) and not (tmp_path / "out.csv").exists()


def test_written_files_get_the_usual_permissions_and_replace_the_old(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    mask = os.umask(0o022)
    try:
        output_files.write_text(str(target), "new\n")
    finally:
        os.umask(mask)
    assert target.read_text() == "new\n" and stat.S_IMODE(os.stat(target).st_mode) == 0o644
    with pytest.raises(output_files.OutputPathError, match="is a directory"):
        output_files.write_text(str(tmp_path), "x")


def test_a_file_written_by_name_goes_through_a_private_directory(tmp_path):
    target, victim = tmp_path / "model.keras", tmp_path / "victim.txt"
    with output_files.replacing_by_name(str(target)) as private_path:
        assert os.path.dirname(private_path) != str(tmp_path)
        assert stat.S_IMODE(os.stat(os.path.dirname(private_path)).st_mode) == 0o700
        with open(private_path, "w") as f:
            f.write("weights")
    assert target.read_text() == "weights" and os.listdir(tmp_path) == ["model.keras"]
    target.unlink()
    plant(target, victim)
    with pytest.raises(output_files.OutputPathError, match="symbolic link"):
        with output_files.replacing_by_name(str(target)):
            pass
    assert untouched(target, victim)


# ---------------------------------------------------------------------------------------------------
# Names from words


def test_the_issues_words_get_distinct_names_that_stay_in_their_directory():
    stems = [file_names.word_stem(word) for word in ISSUE_WORDS]
    assert stems == ["猫", "狗", "cat%27s", "cat_s", "%2E%2E"]
    hostile = ["../../escaped_pig", "a/b", "a\\b", ".hidden", "-rf", "~", "%2E", "", " x", "NUL\u2028"]
    for word in ISSUE_WORDS + hostile + ["The Eiffel Tower", "t-shirt", "café", "बिल्ली"]:
        stem = file_names.word_stem(word)
        assert "/" not in stem and "\\" not in stem and ".." not in stem and not stem.startswith((".", "-"))
        assert os.path.basename(stem) == stem
        if word:  # the readers' own unescape gives the word back (formats.word_from_path)
            assert urllib.parse.unquote(stem) == word
            assert formats.word_from_path(f"/x/{stem}.npy") == word
    assert len({file_names.word_stem(w) for w in ISSUE_WORDS + hostile}) == len(ISSUE_WORDS + hostile)


def test_a_long_word_is_cut_with_a_digest_and_stays_distinct():
    long_words = ["猫" * 200, "猫" * 199 + "狗"]
    stems = [file_names.word_stem(word) for word in long_words]
    assert stems[0] != stems[1]
    assert all(len(stem.encode("utf-8")) <= file_names.MAX_STEM_BYTES for stem in stems)


def test_unique_names_number_repeats_and_case_variants():
    names = file_names.UniqueNames()
    taken = [names.take(stem, ".svg") for stem in ["cat-1", "cat-1", "Cat-1", "cat-1~2", "dog-1"]]
    assert taken == ["cat-1.svg", "cat-1~2.svg", "Cat-1~3.svg", "cat-1~2~2.svg", "dog-1.svg"]
    assert len({name.casefold() for name in taken}) == len(taken)


def _issue_drawings(tmp_path) -> str:
    """12 real belt drawings, their words the issue's five; repeated key_ids and one repeated record."""
    with open(BELT, encoding="utf-8") as f:
        records = [json.loads(line) for line in f][:11]
    for index, record in enumerate(records):
        record["word"] = ISSUE_WORDS[index % len(ISSUE_WORDS)]
        record["key_id"] = str(5000 + index // 2)  # 猫 and 狗, cat's and cat_s, .. and 猫 share key_ids
    records.append(dict(records[0]))  # the same drawing twice
    path = tmp_path / "words.ndjson"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("fmt", ["svg", "png", "gif"])
def test_render_of_12_drawings_writes_12_files(fmt, tmp_path):
    out = tmp_path / "out"
    result = render.render(prediction_io.expand_inputs([_issue_drawings(tmp_path)]), str(out), fmt, size=32)
    assert result["rendered"] == 12
    pictures = sorted(name for name in os.listdir(out) if name.endswith(f".{fmt}"))
    assert len(result["files"]) == len(pictures) == 12
    assert sorted(os.path.basename(path) for path in result["files"]) == pictures
    assert f"猫-5000.{fmt}" in pictures and f"猫-5000~2.{fmt}" in pictures  # the repeated record
    assert os.listdir(tmp_path) == ["out", "words.ndjson"]  # nothing escaped out/ (the word "..")


def test_render_npy_puts_each_word_in_its_own_file_and_reads_it_back(tmp_path):
    with open(BELT, encoding="utf-8") as f:
        records = [json.loads(line) for line in f][:12]
    words = ISSUE_WORDS + ["兔", "a/b", "a_b", "a b", "...", ".", "../../escaped_pig"]
    for record, word in zip(records, words, strict=True):
        record["word"] = word
    path = tmp_path / "words.ndjson"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out"
    result = render.render(prediction_io.expand_inputs([str(path)]), str(out), "npy")
    assert len(result["files"]) == len([n for n in os.listdir(out) if n.endswith(".npy")]) == 12
    read_back = {drawing.word for file in result["files"] for drawing in formats.iter_drawings(file)}
    assert read_back == set(words)
    assert sorted(os.listdir(tmp_path)) == ["out", "words.ndjson"]


@pytest.mark.parametrize("fmt, grid", [("svg", 0), ("png", 0), ("gif", 0), ("png", 4), ("npy", 0)])
def test_render_refuses_a_planted_link_at_any_of_its_outputs(fmt, grid, tmp_path):
    inputs = prediction_io.expand_inputs([BELT])
    first = next(formats.iter_drawings(BELT))
    out = tmp_path / "out"
    out.mkdir()
    names = {
        ("svg", 0): f"belt-{first.key_id}.svg", ("png", 0): f"belt-{first.key_id}.png",
        ("gif", 0): f"belt-{first.key_id}.gif", ("png", 4): "sheet-0001.png", ("npy", 0): "belt.npy",
    }
    for name in (names[fmt, grid], render.REJECTED_FILE):
        victim = tmp_path / f"victim-{name}"
        plant(out / name, victim)
        with pytest.raises(output_files.OutputPathError, match=f"{name} is a symbolic link"):
            render.render(inputs, str(out), fmt, size=32, grid=grid, limit=3)
        assert untouched(out / name, victim)
        (out / name).unlink()


# ---------------------------------------------------------------------------------------------------
# predict's files: planted links, spreadsheet formulas, Kaggle


def _rows(words: list[str]) -> list[prediction_io.Row]:
    return [prediction_io.Row(5000 + i, word, [(word, 0.9), ("belt", 0.1)]) for i, word in enumerate(words)]


def test_predict_writers_refuse_planted_links_and_ignore_a_stale_part_link(tmp_path):
    output, rejected = tmp_path / "preds.csv", tmp_path / prediction_io.REJECTED_FILE
    part_victim = tmp_path / "victim-part.txt"
    plant(tmp_path / "preds.csv.part", part_victim)  # the old .part name: no longer written at all
    prediction_io.write_predictions(str(output), _rows(["belt"]), 2, kaggle=False)
    assert output.read_text().startswith("key_id,word,word_1")
    assert untouched(tmp_path / "preds.csv.part", part_victim)
    for target in (output, rejected):
        target.unlink(missing_ok=True)
        victim = tmp_path / f"victim-{target.name}"
        plant(target, victim)
        with pytest.raises(output_files.OutputPathError, match=f"{target.name} is a symbolic link"):
            if target == output:
                prediction_io.write_predictions(str(target), _rows(["belt"]), 2, kaggle=True)
            else:
                prediction_io.write_rejected(str(target), [{"reason": "too_large"}])
        assert untouched(target, victim)


FORMULAS = ['=HYPERLINK("http://x","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "\tcmd"]


def test_top_k_cells_that_would_run_in_a_spreadsheet_are_escaped(tmp_path):
    # A carriage return cannot reach the CSV (no reader lets a word hold a control character); escaped
    # all the same, as OWASP lists it.
    assert prediction_io.spreadsheet_cell("\rcmd") == "'\rcmd"
    output = tmp_path / "preds.csv"
    prediction_io.write_predictions(str(output), _rows(FORMULAS + ["belt", "t-shirt"]), 2, kaggle=False)
    with open(output, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for row, word in zip(rows, FORMULAS + ["belt", "t-shirt"], strict=True):
        expected = word if word in ("belt", "t-shirt") else "'" + word
        assert row["word"] == row["word_1"] == expected and row["word_2"] == "belt"
        assert not row["word"].startswith(prediction_io.FORMULA_STARTS)


def test_a_kaggle_submission_stays_byte_exact_and_refuses_classes_that_need_escaping(tmp_path):
    output = tmp_path / "submission.csv"
    prediction_io.write_predictions(str(output), _rows(["The Eiffel Tower", "belt"]), 3, kaggle=True)
    assert output.read_bytes() == b"key_id,word\n5000,The_Eiffel_Tower belt\n5001,belt belt\n"
    prediction_io.check_kaggle_classes(["The Eiffel Tower", "t-shirt", "belt"])
    for word in FORMULAS:
        with pytest.raises(ValueError, match="a spreadsheet runs as a formula: a Kaggle submission cannot"):
            prediction_io.check_kaggle_classes(["belt", word])


# ---------------------------------------------------------------------------------------------------
# A training run's own files


def _data_dir(tmp_path) -> str:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stats = {"kind": "strokes", "preprocessing": preprocess.job_record("strokes", "uniform", True)}
    (data_dir / layout.STATS_FILE).write_text(json.dumps(stats))
    return str(data_dir)


@pytest.mark.parametrize(
    "name",
    [run_dir.CONFIG_FILE, run_dir.PREPROCESSING_FILE, run_dir.CLASSES_FILE, run_dir.DATA_STATS_FILE,
     run_dir.MODEL_FILE, *run_dir.WRITTEN_DIRS],
)
def test_a_runs_files_refuse_a_planted_link(name, tmp_path):
    model_dir = tmp_path / "run"
    model_dir.mkdir()
    config = TrainConfig(data_dir=_data_dir(tmp_path), model_dir=str(model_dir), input=TRUNCATED)
    victim = tmp_path / "victim.txt"
    plant(model_dir / name, victim)
    with pytest.raises(output_files.OutputPathError, match=f"{name} is a symbolic link"):
        run_dir.check_writable(str(model_dir))  # what trainer.validate runs before anything is built
    with pytest.raises(output_files.OutputPathError, match=f"{name} is a symbolic link"):
        run_dir.write_run_files(config, ["belt", "猫"])
    assert untouched(model_dir / name, victim)


def test_a_runs_files_are_written_whole_with_ordinary_permissions(tmp_path):
    model_dir = tmp_path / "run"
    config = TrainConfig(data_dir=_data_dir(tmp_path), model_dir=str(model_dir), input=TRUNCATED)
    run_dir.write_run_files(config, ["belt", "猫"])
    assert sorted(os.listdir(model_dir)) == ["classes.txt", "config.json", "preprocessing.json"]
    assert run_dir.read_classes(str(model_dir)) == ["belt", "猫"]
    assert run_dir.read_config(str(model_dir)) == config
    assert run_dir.read_preprocessing(str(model_dir)).max_points == 9


def test_generate_names_its_files_from_a_class_word_that_is_a_path(tmp_path):
    from quickdraw_tf import generate, models

    model = models.get_model("sketch_rnn", 2, enc_size=8, dec_size=16, z_size=4, num_mixture=3, class_size=4)
    model.scale_factor.assign(0.1)
    model.data_max_seq_len.assign(12)
    classes = ["belt", "../../escaped_pig"]
    out = tmp_path / "a" / "b" / "out"
    written = generate.generate(model, classes, "../../escaped_pig", 2, 0.5, str(out), seed=1)
    paths = [path for kind in ("ndjson", "grid", "gif") for path in written[kind]]
    assert all(os.path.dirname(path) == str(out) for path in paths)
    assert sorted(os.listdir(out)) == sorted(os.path.basename(path) for path in paths)
    assert os.path.basename(written["ndjson"][0]) == "%2E%2E%2F%2E%2E%2Fescaped_pig.ndjson"
    assert os.listdir(tmp_path / "a") == ["b"] and os.listdir(tmp_path / "a" / "b") == ["out"]
    for path in paths:  # and a planted link at any of its files is refused before anything is written
        victim = tmp_path / "victim.txt"
        os.replace(path, tmp_path / "kept")
        plant(path, victim)
        with pytest.raises(output_files.OutputPathError, match="is a symbolic link"):
            generate.generate(model, classes, "../../escaped_pig", 2, 0.5, str(out), seed=1)
        assert untouched(path, victim)
        os.unlink(path)
        os.replace(tmp_path / "kept", path)
    drawings = list(formats.iter_drawings(written["ndjson"][0]))
    assert [drawing.word for drawing in drawings] == ["../../escaped_pig"] * 2
