"""A functional training loop: parameters as plain tensors, gradients from torch.autograd.grad(loss, params), an in-place update under no_grad, no optimizer and no backward()."""
import torch

torch.manual_seed(5)
x = torch.randn(20, 3)
true_w = torch.tensor([[1.5], [-2.0], [0.5]])
y = x @ true_w + 0.1 * torch.randn(20, 1)

w = torch.zeros(3, 1, requires_grad=True)
b = torch.zeros(1, requires_grad=True)
params = [w, b]
lr = 0.1


def model(inputs):
    return inputs @ w + b


for step in range(20):
    pred = model(x)
    loss = ((pred - y) ** 2).mean()
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= lr * g
    if step % 5 == 0:
        print(step, loss.item())
