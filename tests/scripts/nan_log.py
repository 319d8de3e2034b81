"""log of a negative entry: NaN in the forward pass and in the gradients."""
import torch

w = torch.tensor([1.0, -1.0, 2.0], requires_grad=True)
z = torch.log(w)
loss = (z * z).sum()
loss.backward()
