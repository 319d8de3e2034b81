"""A custom torch.autograd.Function (a Swish activation with its own backward and internal intermediates) inside a small MLP regressor trained with SGD."""
import torch
import torch.nn as nn


class Swish(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        sig = torch.sigmoid(input)
        result = input * sig
        ctx.save_for_backward(input, sig)
        return result

    @staticmethod
    def backward(ctx, grad_output):
        input, sig = ctx.saved_tensors
        return grad_output * (sig + input * sig * (1 - sig))


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(2, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(Swish.apply(self.hidden(x)))


torch.manual_seed(3)
x = torch.randn(16, 2)
y = (x[:, :1] * 2 - x[:, 1:]).tanh()
model = Regressor()
loss_fn = nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(30):
    y_pred = model(x)
    loss = loss_fn(y_pred, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print(f"final loss {loss.item():.4f}")
