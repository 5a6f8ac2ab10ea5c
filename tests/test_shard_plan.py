"""The shard plan (by model, then by sample blocks) and block-wise pool runs that shards reproduce exactly."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from robustcheck import load_model
from robustcheck.attacks import PGD, CarliniWagnerL2
from robustcheck.errors import ConfigError
from robustcheck.pool_runs import block_count, block_rows, run_blocks
from robustcheck.shard import Shard, Share, plan


def test_parse_and_validate() -> None:
    assert Shard.parse("2/3") == Shard(2, 3) and str(Shard.parse(" 1 / 2 ")) == "1/2"
    for bad in ("0/2", "3/2", "2", "a/b", "1/0"):
        with pytest.raises(ConfigError, match="--robustcheck-shard"):
            Shard.parse(bad)


def test_models_split_whole_when_there_are_enough() -> None:
    models = ["c.onnx", "a.onnx", "b.onnx", "d.onnx", "e.onnx"]
    shares = [plan(models, Shard(k, 2)) for k in (1, 2)]
    assert shares[0] == {"a.onnx": Share(), "c.onnx": Share(), "e.onnx": Share()}
    assert shares[1] == {"b.onnx": Share(), "d.onnx": Share()}
    assert plan(list(reversed(models)), Shard(1, 2)) == shares[0]  # collection order does not matter


def test_fewer_models_than_shards_split_their_samples() -> None:
    models = ["a.onnx", "b.onnx"]
    got = [plan(models, Shard(k, 5)) for k in range(1, 6)]
    assert got == [{"a.onnx": Share(0, 3)}, {"b.onnx": Share(0, 2)}, {"a.onnx": Share(1, 3)},
                   {"b.onnx": Share(1, 2)}, {"a.onnx": Share(2, 3)}]
    # every row of every model is owned by exactly one shard
    for model in models:
        shares = [g[model] for g in got if model in g]
        rows = np.concatenate([s.rows(10) for s in shares])
        assert sorted(rows.tolist()) == list(range(10))
    assert Share(0, 3).leads and not Share(1, 3).leads and Share().whole


def test_block_rows() -> None:
    assert block_count(10, 4) == 3
    assert block_rows([0, 2], 10, 4).tolist() == [0, 1, 2, 3, 8, 9]
    assert block_rows([], 10, 4).tolist() == []


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, np.ndarray, np.ndarray]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4)).eval()
    with torch.no_grad():
        net[1].weight.mul_(8)  # input-sensitive: its decision boundaries cross the unit box
    path = tmp_path_factory.mktemp("blocks") / "mlp.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(2, 12),), str(path), input_names=["x"], output_names=["y"],
                          opset_version=17, dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, dynamo=False)
    model = load_model(path)
    x = np.random.default_rng(0).uniform(size=(11, 12)).astype(np.float32)
    return model, x, model.predict(x)


@pytest.mark.parametrize("attack", [CarliniWagnerL2(binary_search_steps=3, max_iterations=40, batch_size=4,
                                                    initial_const=1.0, learning_rate=0.05),
                                    PGD(epsilon=0.2, steps=10, batch_size=4)], ids=["cw-l2", "pgd"])
def test_blocks_run_apart_give_the_rows_of_a_whole_run(small_model: tuple[object, np.ndarray, np.ndarray],
                                                       attack: object) -> None:
    """C&W aborts early on the batch's total loss and PGD draws random starts per batch: only
    fixed blocks with their own seeds make a shard's rows equal an unsharded run's."""
    model, x, y = small_model

    def seed_of(b: int) -> int:
        return 1000 + b

    whole = run_blocks(attack, model, x, y, seed_of=seed_of)  # type: ignore[arg-type]
    parts = {p: run_blocks(attack, model, x, y, seed_of=seed_of, blocks=[b for b in range(3) if b % 2 == p])  # type: ignore[arg-type]
             for p in (0, 1)}
    rows = {p: block_rows([b for b in range(3) if b % 2 == p], len(x), 4) for p in (0, 1)}
    for p in (0, 1):
        np.testing.assert_array_equal(parts[p].success, whole.success[rows[p]])
        np.testing.assert_array_equal(parts[p].x_adv, whole.x_adv[rows[p]])
        for norm, d in parts[p].distances.items():
            np.testing.assert_array_equal(d, whole.distances[norm][rows[p]])
    assert len(whole) == len(x) and whole.success.any()
