"""An evaluation script: a CNN with BatchNorm and Dropout left in train mode (model.eval() forgotten), batches scored under torch.no_grad(), the loss never back-propagated."""
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(7)


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(3 * 4 * 4, 4)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.drop(torch.flatten(x, 1))
        return F.log_softmax(self.fc(x), dim=1)


model = SmallNet()
test_images = torch.randn(12, 1, 6, 6)
test_labels = torch.randint(0, 4, (12,))

test_loss, correct = 0.0, 0
with torch.no_grad():
    for i in range(0, 12, 6):
        data, target = test_images[i:i + 6], test_labels[i:i + 6]
        output = model(data)
        loss = F.nll_loss(output, target)
        test_loss += loss.item() * len(data)
        pred = output.argmax(dim=1, keepdim=True)
        correct += pred.eq(target.view_as(pred)).sum().item()
print(f"Test set: average loss {test_loss / 12:.4f}, accuracy {correct}/12")
