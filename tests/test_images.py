"""Images through the factory: data, stable split, the three generators, and the image gate on real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ouroboros.images.calibration import calibration_bench, false_refusals, power
from ouroboros.images.data import ImageSet, from_frame, load_source, to_frame
from ouroboros.images.faults import FAULTS
from ouroboros.images.generators import FAMILIES, create, load
from ouroboros.images.split import split_images

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    return load_source("sklearn:digits")


@pytest.fixture(scope="module")
def split(digits):
    return split_images(digits, 0.2, 0)


def test_split_is_stable_and_keeps_the_holdout_apart(digits, split):
    train, holdout = split
    assert len(train) + len(holdout) == len(digits) and 0.15 < len(holdout) / len(digits) < 0.25
    # a side depends on the image alone: splitting a subset puts every image where the whole split put it
    sub_train, sub_holdout = split_images(digits.take(np.arange(0, len(digits), 2)), 0.2, 0)
    held = {im.tobytes() for im in holdout.images}
    assert all(im.tobytes() in held for im in sub_holdout.images)
    assert not any(im.tobytes() in held for im in sub_train.images)


def test_frame_round_trip_keeps_images_to_a_grey_level(split):
    train, _ = split
    back = from_frame(to_frame(train))
    assert np.array_equal(back.labels, train.labels)
    assert np.abs(back.images - train.images).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generator_fits_samples_reproducibly_and_reloads(family, split, tmp_path):
    train, _ = split
    small = train.take(np.arange(200))
    gen = create(family, seed=3, epochs=2, batch_size=32, **({"sample_steps": 5} if family == "ddpm" else {}))
    losses = []
    gen.fit(small, callback=lambda epoch, loss: losses.append(loss))
    assert len(losses) == 2 and all(np.isfinite(v) for loss in losses for v in loss.values())
    a, b = gen.sample(40, seed=5), gen.sample(40, seed=5)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)  # bitwise, seeded
    assert not np.array_equal(a.images, gen.sample(40, seed=6).images)
    assert a.images.shape == (40, 8, 8) and a.images.min() >= 0 and a.images.max() <= 1
    assert set(a.labels) <= set(small.labels)
    wanted = np.full(10, 7)
    assert np.array_equal(gen.sample(10, seed=1, labels=wanted).labels, wanted)  # class-conditional
    gen.save(tmp_path / "g")
    assert np.array_equal(load(tmp_path / "g").sample(40, seed=5).images, a.images)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_generator_cuda_path(family, split):
    small = split[0].take(np.arange(200))
    gen = create(family, seed=0, device="cuda", epochs=1, **({"sample_steps": 5} if family == "ddpm" else {}))
    out = gen.fit(small).sample(20, seed=1)
    assert np.array_equal(out.images, gen.sample(20, seed=1).images)


@pytest.fixture(scope="module")
def bench(split):
    from ouroboros.images.config import ImageGateConfig

    return calibration_bench(*split, ImageGateConfig(null_draws=100, utility_draws=15))


@pytest.mark.parametrize("n", [100, 500])
def test_gate_rarely_refuses_fresh_real_digits(bench, n):
    refused, per_test = false_refusals(bench, n, batches=25, seed=n)
    # target 1% (gate.false_refusal_rate); 3 of 25 would be a rate beyond 2% with p < 0.02
    assert refused <= 2, per_test


@pytest.mark.parametrize("fault", FAULTS)
def test_gate_refuses_each_fault(bench, fault):
    for n in (100, 500):
        refused, _ = power(bench, fault, n, batches=3)
        assert refused == 3, (fault, n)
