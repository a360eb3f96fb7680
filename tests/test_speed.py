"""resnet_edu.speed: the speed ladder, each rung timed by fit itself."""


def test_speed_ladder_measures_each_rung():
    from resnet_edu.speed import ladder_table, speed_ladder

    rows = speed_ladder(stem="imagenet", batch_size=8, steps=2, repeats=3, device="cpu", num_workers=0,
                        rungs=["DataLoader, fp32", "+ data on the device"], verbose=False)
    assert [r["rung"] for r in rows] == ["DataLoader, fp32", "+ data on the device"]
    assert rows[0]["loader"] == "dataloader" and rows[1]["loader"] == "device"
    for row in rows:  # one figure per timed epoch (the warm-up epoch is left out), and their median
        assert len(row["spread"]) == 3 and all(v > 0 for v in row["spread"])
        assert row["images_per_second"] == sorted(row["spread"])[1]
    assert rows[0]["speedup"] == 1.0  # the first rung is the baseline the others are compared with
    assert (rows[1]["speedup"] > 1) == (rows[1]["images_per_second"] > rows[0]["images_per_second"])
    table = ladder_table(rows).splitlines()
    assert len(table) == 4 and table[3].endswith(f"| {rows[1]['speedup']:.2f}x |")


def test_the_speed_ladder_times_the_trainer_itself(monkeypatch):
    """measure_rung reads fit's own epoch timings: it runs one warm-up epoch, then `repeats` epochs of
    `steps` steps, on the settings of the rung."""
    from resnet_edu import speed

    calls = []
    real_fit = speed.fit

    def recording_fit(model, data, config, **kwargs):
        calls.append((config, len(data.train_labels)))
        return real_fit(model, data, config, **kwargs)

    monkeypatch.setattr(speed, "fit", recording_fit)
    row = speed.measure_rung(speed.synthetic_data(64), speed.RUNGS["+ channels_last"], stem="imagenet",
                             batch_size=8, steps=3, repeats=2, device="cpu")
    (config, images), = calls
    assert images == 24 and config.epochs == 3 and config.batch_size == 8
    assert config.loader == "device" and config.channels_last and config.precision == "fp32"
    assert len(row["spread"]) == 2
