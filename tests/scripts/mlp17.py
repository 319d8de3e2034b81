"""A small MLP as a course shows it after linear regression: 4 -> 8 -> 4 -> 1, ReLU, MSE, SGD.

Its graph has 17 nodes: x, y, three Linear layers (weight, bias, transpose, addmm),
two ReLUs and the loss; the first layer's weight is 8x4.
"""
import torch
import torch.nn as nn

torch.manual_seed(0)


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 4)
        self.fc3 = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


model = MLP()
criterion = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

x = torch.randn(2, 4)
y = torch.tensor([[1.0], [-1.0]])

for epoch in range(5):
    pred = model(x)
    loss = criterion(pred, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")
