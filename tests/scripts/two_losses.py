"""A shared encoder with two heads; the targets are unnamed torch.ones / torch.zeros."""
import torch
import torch.nn as nn
import torch.nn.functional as F

enc = nn.Linear(3, 2)
head_a = nn.Linear(2, 1)
head_b = nn.Linear(2, 1)
x = torch.randn(4, 3)
z = torch.tanh(enc(x))
loss_a = F.mse_loss(head_a(z), torch.ones(4, 1))
loss_b = F.l1_loss(head_b(z), torch.zeros(4, 1))
total = loss_a + 0.5 * loss_b
total.backward()
