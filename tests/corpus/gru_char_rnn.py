"""A character-level RNN: an nn.GRUCell stepped by hand over one-hot characters x[:, t], hidden state from zeros, the loss summed over time steps, SGD."""
import torch
import torch.nn as nn

text = "hello world, hello graph"
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
VOCAB, HIDDEN, STEPS = len(chars), 8, 4


class CharRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.GRUCell(VOCAB, HIDDEN)
        self.out = nn.Linear(HIDDEN, VOCAB)

    def forward(self, x, h):
        h = self.cell(x, h)
        return self.out(h), h


def batch(start):
    idx = torch.tensor([stoi[c] for c in text[start:start + STEPS + 1]])
    x = nn.functional.one_hot(idx[:-1], VOCAB).float().unsqueeze(0)  # (1, STEPS, VOCAB)
    return x, idx[1:].unsqueeze(0)


rnn = CharRNN()
optimizer = torch.optim.SGD(rnn.parameters(), lr=0.1)
criterion = nn.CrossEntropyLoss()

for it in range(10):
    x, y = batch(it % (len(text) - STEPS - 1))
    h = torch.zeros(1, HIDDEN)
    loss = 0
    for t in range(STEPS):
        logits, h = rnn(x[:, t], h)
        loss = loss + criterion(logits, y[:, t])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    if it % 5 == 0:
        print(it, loss.item() / STEPS)
