"""An evaluation script in the modern style: model.eval() and torch.inference_mode(), an MLP with BatchNorm scored with cross-entropy on a held-out batch."""
import torch
from torch import nn

torch.manual_seed(11)
model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
loss_fn = nn.CrossEntropyLoss()
X_test = torch.randn(10, 4)
y_test = torch.randint(0, 3, (10,))

# A few training steps first, so the running statistics are not the defaults.
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(3):
    optimizer.zero_grad()
    loss_fn(model(torch.randn(10, 4)), torch.randint(0, 3, (10,))).backward()
    optimizer.step()

model.eval()
with torch.inference_mode():
    logits = model(X_test)
    loss = loss_fn(logits, y_test)
    accuracy = (logits.argmax(1) == y_test).float().mean()
print(f"test loss {loss.item():.4f}, accuracy {accuracy.item():.2f}")
