"""A recurrent net unrolled by hand over 150 steps with plain tensors: no modules to fold."""
import torch

torch.manual_seed(0)
W_xh = (0.3 * torch.randn(3, 4)).requires_grad_()
W_hh = (0.3 * torch.randn(4, 4)).requires_grad_()
xs = torch.randn(150, 2, 3)
h = torch.zeros(2, 4)
for x in xs:
    h = torch.tanh(x @ W_xh + h @ W_hh)
loss = h.pow(2).mean()
loss.backward()
with torch.no_grad():
    W_xh -= 0.1 * W_xh.grad
    W_hh -= 0.1 * W_hh.grad
