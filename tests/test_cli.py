import json

import pytest
from click.testing import CliRunner
from conftest import write_image
from PIL import Image

from cin_style.cli.main import cli

TINY_TRAIN = ["--steps", "3", "--batch-size", "2", "--image-size", "24", "--style-size", "32",
              "--base-width", "4", "--residual-blocks", "1", "--checkpoint-every", "2",
              "--style-layers", "relu1_2,relu2_2", "--content-layers", "relu2_2",
              "--device", "cpu", "-q"]


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def trained(runner, style_dir, content_dir, vgg_weights_file, tmp_path):
    out = tmp_path / "model.pt"
    result = runner.invoke(cli, ["train", "--styles", str(style_dir), "--content", str(content_dir),
                                 "--out", str(out), "--vgg-weights", str(vgg_weights_file), *TINY_TRAIN])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "3 styles, step 3" in result.output
    return out


def _all_commands(group, prefix=()):
    yield list(prefix)
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _all_commands(command, (*prefix, name))
        else:
            yield [*prefix, name]


@pytest.mark.parametrize("command", list(_all_commands(cli)), ids=lambda c: " ".join(c) or "cin-style")
def test_help_for_every_command(runner, command):
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.splitlines()) > 4  # a description and options, not a bare usage line


def test_train_help_lists_the_documented_options(runner):
    text = runner.invoke(cli, ["train", "--help"]).output
    for option in ["--styles", "--content", "--out", "--steps", "--batch-size", "--image-size",
                   "--style-size", "--lr", "--content-weight", "--style-weight", "--tv-weight",
                   "--encoder", "--device", "--seed", "--resume", "--checkpoint-every"]:
        assert option in text


def test_end_to_end_train_styles_stylize(runner, trained, tmp_path):
    listed = runner.invoke(cli, ["styles", str(trained)])
    assert listed.exit_code == 0 and "alpha" in listed.output and "gamma" in listed.output
    photo = write_image(tmp_path / "in" / "photo.png", seed=42, size=(37, 29))
    out = tmp_path / "out.png"
    result = runner.invoke(cli, ["stylize", str(trained), str(photo), "-o", str(out),
                                 "--style", "alpha=0.5", "--style", "beta=0.5", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["blend"] == "alpha=0.5,beta=0.5" and record["device"] == "cpu"
    with Image.open(out) as image:
        assert image.size == (37, 29)


def test_stylize_folder_and_glob_into_folder(runner, trained, tmp_path):
    for i in range(2):
        write_image(tmp_path / "photos" / f"p{i}.jpg", seed=i, size=(20, 18))
    out = tmp_path / "outdir"
    result = runner.invoke(cli, ["stylize", str(trained), str(tmp_path / "photos"), "-o", str(out),
                                 "--style", "1", "--format", "jpg"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["p0.jpg", "p1.jpg"]
    result = runner.invoke(cli, ["stylize", str(trained), str(tmp_path / "photos" / "*.jpg"),
                                 "-o", str(tmp_path / "globbed")])
    assert result.exit_code == 0 and len(list((tmp_path / "globbed").iterdir())) == 2


def test_unknown_style_names_valid_ones(runner, trained, tmp_path):
    photo = write_image(tmp_path / "p.png", seed=1)
    result = runner.invoke(cli, ["stylize", str(trained), str(photo), "-o", str(tmp_path / "o.png"),
                                 "--style", "vangogh=1"])
    assert result.exit_code == 1
    assert "unknown style 'vangogh'; valid styles: alpha, beta, gamma" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("spec,message", [("alpha=-1", "negative"), ("alpha=nan", "finite")])
def test_bad_weights_exit_nonzero(runner, trained, tmp_path, spec, message):
    photo = write_image(tmp_path / "p.png", seed=1)
    result = runner.invoke(cli, ["stylize", str(trained), str(photo), "-o", str(tmp_path / "o.png"),
                                 "--style", spec])
    assert result.exit_code == 1 and message in result.output


def test_bad_paths_and_files(runner, trained, tmp_path):
    photo = write_image(tmp_path / "p.png", seed=1)
    missing_model = runner.invoke(cli, ["stylize", str(tmp_path / "nope.pt"), str(photo), "-o",
                                        str(tmp_path / "o.png")])
    assert missing_model.exit_code == 1 and "no such file" in missing_model.output
    missing_input = runner.invoke(cli, ["stylize", str(trained), str(tmp_path / "nope.jpg"), "-o",
                                        str(tmp_path / "o.png")])
    assert missing_input.exit_code == 2 and "input not found" in missing_input.output
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"junk")
    result = runner.invoke(cli, ["styles", str(garbage)])
    assert result.exit_code == 1 and "not a readable cin-style checkpoint" in result.output
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"junk")
    result = runner.invoke(cli, ["stylize", str(trained), str(corrupt), str(photo), "-o",
                                 str(tmp_path / "outs")])
    assert result.exit_code == 1 and "cannot read image" in result.output
    assert [p.name for p in (tmp_path / "outs").iterdir()] == ["p.png"]  # the good one still written
    result = runner.invoke(cli, ["stylize", str(trained), str(photo), "-o", str(tmp_path / "o.gif")])
    assert result.exit_code == 1 and "unsupported output type" in result.output
    for args, text in [(["train", "--styles", str(tmp_path / "none"), "--content", str(tmp_path),
                         "--out", str(tmp_path / "x.pt")], "style image not found"),
                       (["train", "--styles", str(photo), "--content", str(tmp_path / "none"),
                         "--out", str(tmp_path / "x.pt"), "--vgg-weights", str(garbage)],
                        "cannot read VGG weights")]:
        result = runner.invoke(cli, args)
        assert result.exit_code == 1 and text in result.output, result.output
        assert "Traceback" not in result.output


def test_tiny_and_huge_images_are_refused(runner, trained, tmp_path):
    tiny = write_image(tmp_path / "tiny.png", seed=1, size=(8, 8))
    result = runner.invoke(cli, ["stylize", str(trained), str(tiny), "-o", str(tmp_path / "t.png")])
    assert result.exit_code == 1 and "too small" in result.output
    big = write_image(tmp_path / "big.png", seed=1, size=(64, 64))
    result = runner.invoke(cli, ["stylize", str(trained), str(big), "-o", str(tmp_path / "b.png"),
                                 "--max-pixels", "1000"])
    assert result.exit_code == 1 and "--max-pixels" in result.output


def test_resume_and_add_style_via_cli(runner, trained, style_dir, content_dir, vgg_weights_file, tmp_path):
    args = ["train", "--styles", str(style_dir), "--content", str(content_dir), "--out", str(trained),
            "--vgg-weights", str(vgg_weights_file), *TINY_TRAIN]
    args[args.index("--steps") + 1] = "5"
    result = runner.invoke(cli, [*args, "--resume"])
    assert result.exit_code == 0 and "step 5" in result.output, result.output
    new = write_image(tmp_path / "fresh.png", seed=77, size=(30, 30))
    result = runner.invoke(cli, ["add-style", str(trained), f"fresh={new}", "--steps", "2",
                                 "--vgg-weights", str(vgg_weights_file), "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    assert "alpha, beta, gamma, fresh" in result.output
    assert (trained.parent / "model.pt.prev").exists()
    # A larger-scale row: the new painting read at another size, recorded in the checkpoint.
    from cin_style.nn.checkpoint import load_checkpoint

    result = runner.invoke(cli, ["add-style", str(trained), f"fresh_x2={new}", "--steps", "1", "--style-size", "48",
                                 "--vgg-weights", str(vgg_weights_file), "--device", "cpu", "-q"])
    assert result.exit_code == 0 and "fresh, fresh_x2" in result.output, result.output
    assert load_checkpoint(trained)["train_config"]["style_size"] == 48


def test_weights_path_uses_env(runner, tmp_path, monkeypatch):
    monkeypatch.setenv("CIN_STYLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CIN_STYLE_VGG16_WEIGHTS", raising=False)
    result = runner.invoke(cli, ["weights", "path"])
    assert result.exit_code == 1 and "none yet" in result.output
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    monkeypatch.setenv("CIN_STYLE_VGG16_WEIGHTS", str(weights))
    result = runner.invoke(cli, ["weights", "path"])
    assert result.exit_code == 0 and str(weights) in result.output


def test_a_bug_keeps_its_traceback_and_debug_shows_user_errors_in_full(runner, trained, tmp_path,
                                                                        monkeypatch):
    from cin_style.infer import loader
    from cin_style.nn.checkpoint import CheckpointError

    def broken(*args, **kwargs):
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(loader, "load_stylizer", broken)
    result = runner.invoke(cli, ["styles", str(trained)])
    assert isinstance(result.exception, RuntimeError) and "an internal bug" in str(result.exception)
    monkeypatch.undo()
    missing = str(tmp_path / "nothere.pt")
    result = runner.invoke(cli, ["styles", missing])
    assert result.exit_code == 1 and result.output.startswith("Error:") and "no such file" in result.output
    result = runner.invoke(cli, ["--debug", "styles", missing])
    assert isinstance(result.exception, CheckpointError)


def test_progress_and_log_lines_go_to_stderr_and_quiet_silences_them(runner, style_dir, content_dir,
                                                                     vgg_weights_file, tmp_path):
    args = ["train", "--styles", str(style_dir), "--content", str(content_dir), "--validation",
            str(content_dir), "--vgg-weights", str(vgg_weights_file), *[a for a in TINY_TRAIN if a != "-q"]]
    loud = runner.invoke(cli, [*args, "--out", str(tmp_path / "a.pt")])
    assert loud.exit_code == 0, loud.output
    assert "train" in loud.stderr and "img/s" in loud.stderr  # the bar, with its loss/speed postfix
    assert "validation loss" in loud.stderr  # a log line
    assert loud.stdout.startswith("wrote") and len(loud.stdout.splitlines()) == 1  # the result only
    quiet = runner.invoke(cli, [*args, "--out", str(tmp_path / "b.pt"), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and "wrote" in quiet.stdout


def test_an_empty_output_is_refused(tmp_path):
    from conftest import write_image

    photo = write_image(tmp_path / "p.png", seed=1)
    result = CliRunner().invoke(cli, ["stylize", "lite", str(photo), "-o", ""])
    assert result.exit_code == 2 and "output is empty" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png"]
