"""A ladder of models, from the lecture's linear regression to a 48-layer Transformer.

Plain torch only, small enough to run on 2 CPU cores: each `Case` builds a model,
an input batch, a target and a loss, and `Case.step` runs one forward + loss +
backward. ``bench/bench.py`` measures them; tests import them as realistic graphs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Case:
    """One benchmark model with its data. ``step()`` returns the loss after backward."""

    name: str
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    quick: bool = False

    def step(self) -> torch.Tensor:
        # Local names, as a training script has them: the trace names modules by them.
        model, criterion, x, y = self.model, self.criterion, self.x, self.y
        model.zero_grad(set_to_none=True)
        pred = model(x)
        loss = criterion(pred, y)
        loss.backward()
        return loss

    def loss(self) -> torch.Tensor:
        """Forward + loss only (for tools that draw from a loss tensor, e.g. torchviz)."""
        self.model.zero_grad(set_to_none=True)
        return self.criterion(self.model(self.x), self.y)


# --------------------------------------------------------------------------- models


class MLP(nn.Module):
    def __init__(self, d_in: int = 8, hidden: int = 16, d_out: int = 1) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class SmallCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 7 * 7, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with batch norm and a shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18's shape (4 stages of 2 basic blocks) for 32x32 images, narrow widths."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.layer1 = nn.Sequential(BasicBlock(w, w), BasicBlock(w, w))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w))
        self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w))
        self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 2), BasicBlock(8 * w, 8 * w))
        self.fc = nn.Linear(8 * w, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class TransformerClassifier(nn.Module):
    """Embedding, ``layers`` x `nn.TransformerEncoderLayer` (d_model 64), mean-pool, linear head."""

    def __init__(self, layers: int, d_model: int = 64, heads: int = 4, vocab: int = 100, classes: int = 10) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=2 * d_model, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(tokens))
        return self.head(h.mean(dim=1))


# --------------------------------------------------------------------------- the ladder


def linear_regression() -> Case:
    torch.manual_seed(0)
    x = torch.tensor([[1.0], [2.0], [3.0]])
    return Case("linear regression", nn.Linear(1, 1), x, 3 * x, nn.MSELoss(), quick=True)


def mlp() -> Case:
    torch.manual_seed(0)
    x = torch.randn(16, 8)
    return Case("MLP", MLP(), x, x.sum(dim=1, keepdim=True), nn.MSELoss(), quick=True)


def small_cnn() -> Case:
    torch.manual_seed(0)
    x = torch.randn(8, 1, 28, 28)
    y = torch.randint(0, 10, (8,))
    return Case("small CNN", SmallCNN(), x, y, nn.CrossEntropyLoss(), quick=True)


def resnet18() -> Case:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    y = torch.randint(0, 10, (4,))
    return Case("ResNet-18 (32x32)", ResNet18(), x, y, nn.CrossEntropyLoss())


def transformer(layers: int) -> Case:
    torch.manual_seed(0)
    tokens = torch.randint(0, 100, (2, 16))
    y = torch.randint(0, 10, (2,))
    return Case(f"Transformer-{layers}", TransformerClassifier(layers), tokens, y, nn.CrossEntropyLoss())


def ladder(quick: bool = False) -> list[Callable[[], Case]]:
    """Constructors of every case, smallest first; ``quick`` keeps the small ones."""
    cases: list[Callable[[], Case]] = [linear_regression, mlp, small_cnn]
    if not quick:
        cases += [resnet18, lambda: transformer(6), lambda: transformer(24), lambda: transformer(48)]
    return cases
