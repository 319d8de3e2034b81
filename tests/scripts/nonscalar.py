"""backward() on a non-scalar without a gradient."""
import torch

w = torch.tensor([1.0, 2.0], requires_grad=True)
out = w * 3
out.backward()
