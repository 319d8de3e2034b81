"""One training step of the Transformer of ``bench/models.py``, as an ordinary script.

.venv/bin/explain-graph bench/transformer_step.py                 # 24 layers, folded automatically
.venv/bin/explain-graph bench/transformer_step.py --expand model.encoder.layers.0
.venv/bin/explain-graph bench/transformer_step.py -- --layers 48
"""

import argparse

import torch
import torch.nn as nn
from models import TransformerClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--layers", type=int, default=24)
args = parser.parse_args()

torch.manual_seed(0)
model = TransformerClassifier(args.layers)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
tokens = torch.randint(0, 100, (2, 16))
labels = torch.randint(0, 10, (2,))

logits = model(tokens)
loss = criterion(logits, labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()
print(f"loss {loss.item():.4f}")
