"""A small CNN: Conv2d, BatchNorm2d, in-place ReLU, Dropout, flatten, cross-entropy."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=3, padding=1)
        self.bn = nn.BatchNorm2d(2)
        self.relu = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn(self.conv(x)))
        x = F.max_pool2d(x, 2)
        x = self.drop(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


net = Net()
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
images = torch.randn(4, 1, 8, 8)
labels = torch.tensor([0, 2, 1, 0])

for _ in range(2):
    logits = net(images)
    loss = F.cross_entropy(logits, labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
