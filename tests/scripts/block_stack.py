"""A tiny Transformer-like stack: 4 identical residual blocks in a ModuleList, then a head.

Large enough (> 40 graph nodes) for explain-graph to fold its diagram automatically.
"""
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(torch.relu(self.fc1(self.norm(h))))


class Stack(nn.Module):
    def __init__(self, d: int = 4, layers: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(3, d)
        self.layers = nn.ModuleList(Block(d) for _ in range(layers))
        self.head = nn.Linear(d, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for layer in self.layers:
            h = layer(h)
        return self.head(h)


model = Stack()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(2, 3)
y = torch.randn(2, 1)
pred = model(x)
loss = nn.functional.mse_loss(pred, y)
optimizer.zero_grad()
loss.backward()
optimizer.step()
