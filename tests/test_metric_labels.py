"""The metrics presenter: a label, a unit and a meaning per key, significant figures (a tiny
value is not shown as 0), a table shown elsewhere not repeated; metrics.json keeps raw keys."""

from __future__ import annotations

import json

from engines.base import Result
from engines.compression.results import CompressResult
from engines.layout.results import LayoutResult
from engines.metric_labels import Metric, MetricLabels, readable, significant


def test_values_keep_their_significant_figures():
    assert significant(2.2e-06) == "2.2e-06"
    assert significant(0.123456) == "0.123"
    assert significant(12345.678) == "1.23e+04"
    assert significant(0.0) == "0"
    assert readable(True) == "yes" and readable(None) == "n/a"
    assert readable(123456) == "123,456" and readable(7, "px") == "7 px"
    assert readable(0.5, "s") == "0.5 s" and readable([1, 2]) == "[1, 2]"


def test_rows_read_label_value_with_unit_and_meaning_and_undeclared_keys_show_as_they_are():
    labels = MetricLabels({"generation_s": Metric("generation time", "s", "denoising")})
    rows = labels.rows({"generation_s": 1.23456, "new_key": 3e-9})
    assert rows == [["generation time", "1.23 s", "denoising"], ["new_key", "3e-09", ""]]


def test_compression_does_not_repeat_its_rate_table():
    metrics = {"bpp": 0.41, "jpeg_smallest_bpp": 0.5, "webp_same_bytes_psnr_db": 30.1}
    rows = CompressResult.metric_labels.rows(metrics)
    assert [row[0] for row in rows] == ["bits per pixel"]


def test_every_engine_declares_its_metrics_and_metrics_json_keeps_raw_keys(tmp_path):
    from engines.capabilities import CAPABILITIES  # noqa: F401  (every engine's results load)

    declared = [cls for cls in _subclasses(Result) if cls.metric_labels.keys]
    assert len(declared) >= 8
    for cls in declared:
        for key, metric in cls.metric_labels.keys.items():
            assert metric.label and (metric.meaning or metric.unit), (cls.__name__, key)
    from engines.recipes import Recipe

    result = LayoutResult(recipe=Recipe(engine="layout", params={}), metrics={"mIoU": 2.2e-06})
    result.save(tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"mIoU": 2.2e-06}
    assert result.metric_labels.rows(result.metrics)[0][:2] == ["mean IoU", "2.2e-06"]


def _subclasses(cls) -> list[type]:
    import engines.compression.results  # noqa: F401
    import engines.gan.results  # noqa: F401
    import engines.nerf.results  # noqa: F401
    import engines.speech.results  # noqa: F401
    import engines.video.results  # noqa: F401

    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found
