"""A tensor used twice: x's gradient accumulates from both uses."""
import torch

x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
y = x * x + x
loss = y.sum()
loss.backward()
print(x.grad)
