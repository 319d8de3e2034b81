"""The classic two-layer network with hand-written SGD: weights as large tensors requiring grad (a 1000x100 w1), y = relu(x w1) w2, a summed squared error, w -= lr * w.grad under no_grad, then grad.zero_()."""
import torch

dtype = torch.float
torch.manual_seed(0)
N, D_in, H, D_out = 16, 1000, 100, 10
x = torch.randn(N, D_in, dtype=dtype)
y = torch.randn(N, D_out, dtype=dtype)
w1 = torch.randn(D_in, H, dtype=dtype, requires_grad=True)
w2 = torch.randn(H, D_out, dtype=dtype, requires_grad=True)

learning_rate = 1e-6
for t in range(20):
    y_pred = x.mm(w1).clamp(min=0).mm(w2)
    loss = (y_pred - y).pow(2).sum()
    if t % 10 == 9:
        print(t, loss.item())
    loss.backward()
    with torch.no_grad():
        w1 -= learning_rate * w1.grad
        w2 -= learning_rate * w2.grad
        w1.grad.zero_()
        w2.grad.zero_()
