"""Writer identification, the slides' "Approach 1": a standard CNN (Conv -> Pool -> Dense) that
answers "who wrote this?" among the writers it was trained on (sparse categorical cross-entropy).

It sees the same preprocessed images as the verifier. Its last layer has one output per known
writer, so a new writer needs retraining: the point of the classroom comparison.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config import INPUT_SIZE


@dataclass(frozen=True)
class WriterClassifierConfig:
    """Attributes:
    n_writers: number of classes (known writers).
    channels: output channels of the Conv -> BN -> GELU -> MaxPool stages.
    pooled: the feature map is pooled to pooled x pooled before flattening.
    dense: width of the hidden Dense layer.
    dropout: before the output layer.
    input_height, input_width: preprocessed image size.
    """

    n_writers: int
    channels: tuple[int, ...] = (16, 32, 64, 96)
    pooled: int = 4
    dense: int = 256
    dropout: float = 0.3
    input_height: int = INPUT_SIZE
    input_width: int = INPUT_SIZE

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> WriterClassifierConfig:
        fields = dict(values)
        fields["channels"] = tuple(fields.get("channels", cls.channels))
        return cls(**fields)


class WriterClassifier(nn.Module):
    """(B, 1, H, W) ink-bright images -> (B, n_writers) logits."""

    def __init__(self, config: WriterClassifierConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        previous = 1
        for width in config.channels:
            layers += [
                nn.Conv2d(previous, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.GELU(),
                nn.MaxPool2d(2),
            ]
            previous = width
        self.features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(config.pooled))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(previous * config.pooled**2, config.dense),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.dense, config.n_writers),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def sparse_categorical_cross_entropy(
    logits: torch.Tensor, writer_ids: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy with integer class labels (Keras' name, the slides' loss)."""
    return F.cross_entropy(logits, writer_ids.long())
