"""A graph convolutional network (Kipf & Welling shape): a normalised sparse adjacency matrix, torch.spmm in each GraphConvolution layer, dropout, log-softmax, NLL on the training nodes, Adam with weight decay."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

torch.manual_seed(42)
n_nodes, n_feat, n_hidden, n_class = 12, 5, 4, 3


class GraphConvolution(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features))
        stdv = 1.0 / math.sqrt(out_features)
        self.weight.data.uniform_(-stdv, stdv)
        self.bias.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        output = torch.spmm(adj, support)
        return output + self.bias


class GCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout):
        super().__init__()
        self.gc1 = GraphConvolution(nfeat, nhid)
        self.gc2 = GraphConvolution(nhid, nclass)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.gc2(x, adj)
        return F.log_softmax(x, dim=1)


# A ring of nodes with a few chords, self-loops, row-normalised, as a sparse COO matrix.
edges = [(i, (i + 1) % n_nodes) for i in range(n_nodes)] + [(0, 6), (3, 9)]
rows = [a for a, b in edges] + [b for a, b in edges] + list(range(n_nodes))
cols = [b for a, b in edges] + [a for a, b in edges] + list(range(n_nodes))
values = torch.ones(len(rows))
degree = torch.zeros(n_nodes).index_add_(0, torch.tensor(rows), values)
adj = torch.sparse_coo_tensor(torch.tensor([rows, cols]), values / degree[torch.tensor(rows)], (n_nodes, n_nodes),
                              check_invariants=True).coalesce()
features = torch.randn(n_nodes, n_feat)
labels = torch.arange(n_nodes) % n_class
idx_train = torch.arange(0, 8)

model = GCN(nfeat=n_feat, nhid=n_hidden, nclass=n_class, dropout=0.5)
optimizer = optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
for epoch in range(20):
    model.train()
    optimizer.zero_grad()
    output = model(features, adj)
    loss_train = F.nll_loss(output[idx_train], labels[idx_train])
    loss_train.backward()
    optimizer.step()
    if epoch % 10 == 0:
        print(f"Epoch: {epoch + 1:04d} loss_train: {loss_train.item():.4f}")
