"""A custom autograd Function."""
import torch


class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return 2 * x * grad_out


w = torch.tensor([0.5, -1.5], requires_grad=True)
inp = torch.tensor([2.0, 3.0])
h = Square.apply(w * inp)
loss = h.mean()
loss.backward()
