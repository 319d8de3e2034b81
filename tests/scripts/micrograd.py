"""micrograd-style: scalar leaves and a hand-written update."""
import torch

a = torch.tensor(2.0, requires_grad=True)
b = torch.tensor(-3.0, requires_grad=True)
c = torch.tensor(10.0, requires_grad=True)
lr = 0.01

for step in range(3):
    e = a * b
    d = e + c
    f = d.relu()
    L = (f - 1.0) ** 2
    L.backward()
    with torch.no_grad():
        a -= lr * a.grad
        b -= lr * b.grad
        c -= lr * c.grad
        a.grad.zero_()
        b.grad.zero_()
        c.grad.zero_()
    print(step, L.item())
