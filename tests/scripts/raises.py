"""A script that raises after building a model."""
import torch


def helper(t):
    return t.view(5, 5)


x = torch.randn(3, 4, requires_grad=True)
y = helper(x)
