"""A trainer class: the model lives in self.model, data comes from a DataLoader,
gradients are clipped between backward() and step()."""
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


class Trainer:
    def __init__(self) -> None:
        self.model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 2))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.crit = nn.CrossEntropyLoss()

    def step(self, xb: torch.Tensor, yb: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=False)
        out = self.model(xb)
        loss = self.crit(out, yb)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 0.01)
        self.opt.step()
        return loss.item()


data = TensorDataset(torch.randint(0, 10, (8, 2)), torch.randint(0, 2, (8,)))
loader = DataLoader(data, batch_size=4, shuffle=True)
trainer = Trainer()
for epoch in range(2):
    for xb, yb in loader:
        print(trainer.step(xb, yb))
