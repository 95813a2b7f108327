"""The engine: one training loop and one inference loop for every model, on the CPU here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from workbench import engine
from workbench.config import ModelConfig
from workbench.data.batches import ImageBatches, PairBatches, array_batches
from workbench.data.image_bank import ImageBank
from workbench.data.pairs import Pair
from workbench.models import build_model
from workbench.models.writer_id import (
    WriterClassifier,
    WriterClassifierConfig,
    sparse_categorical_cross_entropy,
)

CPU = torch.device("cpu")


class Scale(nn.Module):
    """y = w * x per sample: the simplest model with a parameter and two inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.w * (x + y).flatten(1).mean(1)


def _batches(n: int, size: int):
    for start in range(0, n, size):
        count = min(size, n - start)
        x = torch.ones(count, 1, 2, 2)
        yield (x, x), torch.full((count,), 4.0)


def test_train_one_epoch_steps_the_optimizer_and_reports_the_mean_loss_per_sample():
    torch.manual_seed(0)
    model = Scale()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    criterion = lambda out, target: ((out - target) ** 2).mean()  # noqa: E731
    first = engine.train_one_epoch(
        model, criterion, optimizer, list(_batches(10, 4)), CPU, progress=False
    )
    assert first["samples"] == 10
    # w starts at 0: the first batch's loss is (0 * 2 - 4)^2 = 16, later ones smaller.
    assert 0.0 < first["loss"] < 16.0
    second = engine.train_one_epoch(
        model, criterion, optimizer, list(_batches(10, 4)), CPU, progress=False
    )
    assert second["loss"] < first["loss"]
    assert float(model.w.detach()) == pytest.approx(2.0, abs=0.5)


def test_augment_and_teacher_see_the_batch_the_model_sees():
    model, teacher = Scale(), Scale()
    with torch.no_grad():
        teacher.w.fill_(2.0)
    seen = []

    def augment(x, y):
        return 3 * x, y

    def criterion(out, target, taught):
        seen.append(taught.detach().clone())
        assert not taught.requires_grad
        return ((out - taught) ** 2).mean()

    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    engine.train_one_epoch(
        model, criterion, optimizer, list(_batches(4, 4)), CPU,
        augment=augment, teacher=teacher, progress=False,
    )  # fmt: skip
    # The teacher scored the augmented inputs: w * mean(3 * 1 + 1) = 2 * 4.
    torch.testing.assert_close(seen[0], torch.full((4,), 8.0))
    assert float(teacher.w.detach()) == 2.0 and not teacher.training
    assert float(model.w.detach()) > 0  # pulled towards the teacher


def test_lr_at_sets_the_learning_rate_of_every_step():
    model = Scale()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    seen = []

    def criterion(out, target):
        seen.append(optimizer.param_groups[0]["lr"])
        return ((out - target) ** 2).mean()

    schedule = engine.cosine_schedule(0.1, total_steps=4)
    engine.train_one_epoch(
        model, criterion, optimizer, list(_batches(12, 4)), CPU, first_step=1, lr_at=schedule,
        progress=False,
    )  # fmt: skip
    assert seen == pytest.approx([schedule(1), schedule(2), schedule(3)])
    assert schedule(0) == pytest.approx(0.1) and schedule(4) == pytest.approx(0.0)


def test_predict_restores_the_mode_and_gives_the_verifier_score(signature):
    from workbench.preprocess import preprocess

    torch.manual_seed(0)
    model = build_model(config=ModelConfig(input_height=48, input_width=48)).train()
    image = preprocess(signature, config=build_config(48))[0]
    images = np.stack([image, image[:, ::-1], image])
    scores = engine.predict(model, array_batches(images, images[::-1].copy(), batch_size=2))
    assert model.training and scores.dtype == np.float64 and scores.shape == (3,)
    assert np.all((scores >= 0) & (scores <= 1))
    with torch.inference_mode():
        model.eval()
        logits = model(*next(array_batches(images, images[::-1].copy(), batch_size=3))[0])
    assert scores == pytest.approx(torch.softmax(logits, 1)[:, 0].double().numpy(), abs=1e-6)
    empty = engine.predict(model, array_batches(images[:0], images[:0]))
    assert empty.shape == (0,)


def build_config(size: int):
    from workbench.config import PreprocessConfig

    return PreprocessConfig(height=size, width=size)


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from PIL import Image

    from tests.conftest import synthetic_signature

    folder = tmp_path_factory.mktemp("bank")
    paths = []
    for i in range(6):
        path = folder / f"{i}.png"
        Image.fromarray(synthetic_signature(100 + i)).save(path)
        paths.append(str(path))
    return ImageBank(paths, config=build_config(32), progress=False)


def test_pair_and_image_batches_follow_the_order_and_shard_each_global_batch(bank):
    paths = sorted(bank.index)
    pairs = [Pair(paths[i], paths[(i + 1) % 6], i % 2, "w", "genuine") for i in range(6)]
    whole = list(PairBatches(pairs, bank, batch_size=4, order=[5, 4, 3, 2, 1, 0]))
    assert [len(t) for (_, t) in whole] == [4, 2]
    assert whole[0][1].tolist() == [1, 0, 1, 0] and whole[0][0][0].shape == (4, 1, 32, 32)
    shard = engine.Distributed(rank=1, world_size=2)
    mine = list(PairBatches(pairs, bank, batch_size=4, order=[5, 4, 3, 2, 1, 0], shard=shard))
    # rank 1 takes items 4 and 2 of the first global batch, then 0 of the second (1 and 0).
    assert [t.tolist() for (_, t) in mine] == [[0, 0], [0]]
    assert torch.equal(mine[0][0][0][0], whole[0][0][0][1])
    items = [(p, i % 3) for i, p in enumerate(paths)]
    (x,), classes = next(iter(ImageBatches(items, bank, batch_size=6)))
    assert x.shape == (6, 1, 32, 32) and classes.tolist() == [0, 1, 2, 0, 1, 2]
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_the_writer_classifier_trains_and_predicts_through_the_engine(bank):
    torch.manual_seed(0)
    paths = sorted(bank.index)
    items = [(p, i % 2) for i, p in enumerate(paths)]
    config = WriterClassifierConfig(n_writers=2, dropout=0.0, input_height=32, input_width=32)
    model = engine.wrap_model(WriterClassifier(config), CPU)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = [
        engine.train_one_epoch(
            model, sparse_categorical_cross_entropy, optimizer,
            ImageBatches(items, bank, batch_size=6), CPU, progress=False,
        )["loss"]
        for _ in range(15)
    ]  # fmt: skip
    assert losses[-1] < losses[0]
    probs = engine.predict(
        model, ImageBatches(items, bank, batch_size=4), output=engine.class_probabilities
    )
    assert probs.shape == (6, 2) and np.allclose(probs.sum(1), 1.0)
    module = engine.unwrap(model).eval()
    with torch.inference_mode():
        (x,), _ = next(iter(ImageBatches(items, bank, batch_size=6)))
        expected = torch.softmax(module(x), 1).numpy()
    assert probs == pytest.approx(expected, abs=1e-6)


def test_evaluate_reports_the_verification_metrics(bank):
    paths = sorted(bank.index)
    pairs = [Pair(paths[0], p, int(i < 3), "w", "genuine") for i, p in enumerate(paths)]
    model = build_model(config=ModelConfig(input_height=32, input_width=32))
    labels = np.array([p.label for p in pairs])
    metrics, scores = engine.evaluate(model, PairBatches(pairs, bank, batch_size=4), labels)
    assert set(metrics) == {"eer", "threshold", "acc_at_0.5", "auc"}
    assert scores.shape == (6,) and 0.0 <= metrics["eer"] <= 1.0


def test_cuda_is_refused_clearly_where_there_is_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA"):
        engine.init_distributed("cuda")
    assert engine.default_device() == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_predict_on_cuda_agrees_with_the_cpu_under_bf16_autocast(bank):
    paths = sorted(bank.index)
    images = bank.get(paths)
    torch.manual_seed(0)
    model = build_model(config=ModelConfig(input_height=32, input_width=32)).eval()
    on_cpu = engine.predict(model, array_batches(images, images[::-1].copy()))
    gpu = torch.device("cuda")
    on_gpu = engine.predict(model.to(gpu), array_batches(images, images[::-1].copy()), gpu)
    assert on_gpu == pytest.approx(on_cpu, abs=0.05)
