"""A sequence classifier: nn.LSTM (batch_first) over feature sequences, the last hidden state into a linear head, cross-entropy, Adam and gradient clipping."""
import torch
from torch import nn

torch.manual_seed(0)
SEQ_LEN, FEATURES, HIDDEN, CLASSES = 6, 3, 5, 2


class SequenceClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, seq):
        out, (h_n, c_n) = self.lstm(seq)
        return self.head(h_n[-1])


# Class 1 sequences drift upward, class 0 ones downward.
labels = torch.randint(0, CLASSES, (32,))
trend = (labels.float() * 2 - 1).view(-1, 1, 1) * torch.linspace(0, 1, SEQ_LEN).view(1, -1, 1)
sequences = trend + 0.3 * torch.randn(32, SEQ_LEN, FEATURES)

model = SequenceClassifier()
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

for epoch in range(5):
    for i in range(0, 32, 8):
        data, target = sequences[i:i + 8], labels[i:i + 8]
        optimizer.zero_grad()
        logits = model(data)
        loss = criterion(logits, target)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
    print(f"epoch {epoch}: loss {loss.item():.4f}")
