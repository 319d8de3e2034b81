"""An evaluation script in the modern style: weights from a state dict, model.eval() and torch.inference_mode(), an MLP with BatchNorm scored with cross-entropy on a held-out batch."""
import torch
from torch import nn

torch.manual_seed(11)
model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
loss_fn = nn.CrossEntropyLoss()
X_test = torch.randn(10, 4)
y_test = torch.randint(0, 3, (10,))

# "Load a checkpoint": trained weights and running statistics from a state dict.
state = {k: torch.randn_like(v) * 0.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}
state["1.running_var"] = state["1.running_var"].abs() + 0.5
model.load_state_dict(state)

model.eval()
with torch.inference_mode():
    logits = model(X_test)
    loss = loss_fn(logits, y_test)
    accuracy = (logits.argmax(1) == y_test).float().mean()
print(f"test loss {loss.item():.4f}, accuracy {accuracy.item():.2f}")
