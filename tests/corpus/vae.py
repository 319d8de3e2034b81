"""A variational autoencoder: encoder to mu and logvar, the reparameterisation trick with torch.randn_like, a sigmoid decoder, BCE + KL divergence, Adam."""
import torch
from torch import nn, optim
from torch.nn import functional as F

torch.manual_seed(1)
IN, HID, Z = 16, 8, 2


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(IN, HID)
        self.fc21 = nn.Linear(HID, Z)
        self.fc22 = nn.Linear(HID, Z)
        self.fc3 = nn.Linear(Z, HID)
        self.fc4 = nn.Linear(HID, IN)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, IN))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, IN), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


images = (torch.rand(40, 4, 4) > 0.5).float()
model = VAE()
optimizer = optim.Adam(model.parameters(), lr=1e-2)
model.train()
for epoch in range(3):
    train_loss = 0.0
    for i in range(0, 40, 10):
        data = images[i:i + 10]
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    print(f"epoch {epoch} average loss {train_loss / 40:.4f}")
