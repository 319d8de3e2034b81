"""backward twice on the same graph with retain_graph=True."""
import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
x = torch.tensor([3.0, -1.0])
loss = (w * x).sum() ** 2
loss.backward(retain_graph=True)
first = w.grad.clone()
loss.backward()
print(first, w.grad)
