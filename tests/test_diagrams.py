"""The diagrams are drawn from real modules, and the command line regenerates every PNG."""

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from resnet_edu.pictures import diagrams
from resnet_edu.resnet import resnet34


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


@pytest.mark.parametrize("name", sorted(diagrams.DIAGRAMS))
def test_each_draw_function_returns_a_figure(name):
    fig = diagrams.DIAGRAMS[name]()
    assert isinstance(fig, Figure) and fig.axes and _texts(fig)
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # how Jupyter shows it


def test_conv_block_labels_come_from_the_module():
    texts = _texts(diagrams.draw_identity_and_conv_blocks())
    assert "downsample\n1x1 conv, 128, stride 2\nBN" in texts
    assert "out: 128 x 28 x 28" in texts and "out: 64 x 56 x 56" in texts


def test_bottleneck_shows_reduce_and_expand_channels():
    texts = _texts(diagrams.draw_bottleneck())
    assert {"1x1 conv, 64", "3x3 conv, 64", "1x1 conv, 256", "x: 256 x 56 x 56"} <= set(texts)


def test_stride_placement_draws_v1_and_v15_from_real_blocks():
    fig = diagrams.draw_stride_placement()
    v1, v15 = ([t.get_text() for t in ax.texts] for ax in fig.axes)
    assert fig.axes[0].get_title().startswith("v1: stride 2 on the first 1x1")
    assert fig.axes[1].get_title().startswith("v1.5 (ResNet-B): stride 2 on the 3x3")
    # the stride's label and where the resolution halves: after the 1x1 in v1, after the 3x3 in v1.5
    assert "1x1 conv, 128, stride 2" in v1 and "3x3 conv, 128" in v1
    assert "1x1 conv, 128" in v15 and "3x3 conv, 128, stride 2" in v15
    assert [t for t in v1 if t.startswith("128 x")] == ["128 x 28 x 28", "128 x 28 x 28"]
    assert [t for t in v15 if t.startswith("128 x")] == ["128 x 56 x 56", "128 x 28 x 28"]
    for texts in (v1, v15):
        assert "x: 256 x 56 x 56" in texts and "out: 512 x 28 x 28" in texts
        assert "downsample\n1x1 conv, 512, stride 2\nBN" in texts
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stride_placement_is_not_one_of_the_committed_images():
    assert diagrams.draw_stride_placement not in diagrams.DIAGRAMS.values()


def test_stage_diagram_reads_block_kinds_and_resolutions_from_the_model():
    texts = _texts(diagrams.draw_resnet18_stages())
    assert texts.count("Identity Block\n64 -> 64") == 2
    assert "Conv Block\n64 -> 128, stride 2" in texts
    assert ["64 channels, 56 x 56", "128 channels, 28 x 28", "256 channels, 14 x 14",
            "512 channels, 7 x 7"] == [t for t in texts if t.endswith(("56", "28", "14", " 7"))
                                       and "channels" in t]
    fig34 = diagrams.draw_resnet18_stages(resnet34())
    assert fig34._suptitle.get_text().startswith("ResNet34 at 224 x 224")
    assert _texts(fig34).count("Identity Block\n256 -> 256") == 5


def test_main_writes_every_png(tmp_path, capsys):
    assert diagrams.main([str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{name}.png" for name in diagrams.DIAGRAMS)
    for path in tmp_path.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().out.count("wrote ") == len(diagrams.DIAGRAMS)


def test_main_rejects_options_with_usage(capsys):
    assert diagrams.main(["--help"]) == 2
    assert "usage: python -m resnet_edu.pictures.diagrams" in capsys.readouterr().out


def test_the_committed_pngs_are_what_the_code_draws_today(tmp_path):
    """Byte for byte: a change to a block or to the drawing code that is not followed by regenerating
    images/ fails here (the PNGs carry no date or version stamp, so equal drawings give equal bytes)."""
    images = Path(__file__).resolve().parents[1] / "images"
    stale = [path.name for path in diagrams.save_all(tmp_path)
             if not (images / path.name).is_file() or (images / path.name).read_bytes() != path.read_bytes()]
    assert not stale, f"run `python -m resnet_edu.pictures.diagrams` and commit images/: stale or missing {stale}"
