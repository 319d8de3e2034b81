"""sqrt at 0: a finite forward, an infinite gradient."""
import torch

x = torch.tensor([0.0, 4.0], requires_grad=True)
r = torch.sqrt(x)
loss = (r * 3.0).sum()
loss.backward()
