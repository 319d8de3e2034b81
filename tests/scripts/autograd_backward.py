"""torch.autograd.backward(loss) instead of loss.backward()."""
import torch

w = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
b = torch.tensor([0.5, -0.5], requires_grad=True)
x = torch.tensor([[1.0, -1.0]])
out = torch.tanh(x @ w + b)
loss = (out ** 2).sum()
torch.autograd.backward(loss)
print(w.grad, b.grad)
