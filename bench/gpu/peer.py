#!/usr/bin/env python3
"""The PyTorch peer of ulc's CUDA train steps: models/ul_tiny.ul and models/ul_small.ul written in PyTorch,
layer for layer (models/std/layers.ul, diffusion.ul, optim.ul), and their `fit` step (forward, the two ELBO
terms and the KL, backward, Adam) timed on the same GPU. bench/gpu/bench.mjs runs it beside ulc.

    python3 bench/gpu/peer.py --model ul_tiny --batch 64 [--steps 50] [--warmup 10] [--compile] [--device cuda]

Prints one JSON object: the parameter count (bench.mjs checks it against ulc's), the median step time in
milliseconds (CUDA-synchronised wall time per step, after warm-up), the peak of allocated device memory, and
the versions. `--compile` runs the step through torch.compile(mode="reduce-overhead"), which captures CUDA
Graphs as ulc does; the default is eager PyTorch.
"""

import argparse
import json
import math
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------- std.layers


class Linear(nn.Module):
    """y = x·W + b, LeCun-normal W [In, Out] scaled by init_scale."""

    def __init__(self, n_in, n_out, init_scale=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * (init_scale / math.sqrt(n_in)))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class LayerNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(d))
        self.shift = nn.Parameter(torch.zeros(d))
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.scale, self.shift, self.eps)


class MLP(nn.Module):
    def __init__(self, n_in, hidden, n_out, depth):
        super().__init__()
        self.first = Linear(n_in, hidden)
        self.hidden = nn.ModuleList(Linear(hidden, hidden) for _ in range(depth - 1))
        self.last = Linear(hidden, n_out)

    def forward(self, x):
        h = F.silu(self.first(x))
        for layer in self.hidden:
            h = F.silu(layer(h))
        return self.last(h)


class ResMLPBlock(nn.Module):
    def __init__(self, d, e):
        super().__init__()
        self.norm, self.fc1, self.cond, self.fc2 = LayerNorm(d), Linear(d, d), Linear(e, d), Linear(d, d, 0.0)

    def forward(self, h, c):
        u = self.fc1(F.silu(self.norm(h))) + self.cond(F.silu(c))
        return h + self.fc2(F.silu(u))


class Conv2d(nn.Module):
    """NCHW, square K×K kernel, He-normal weights scaled by init_scale."""

    def __init__(self, c_in, c_out, k, stride=1, padding=None, init_scale=1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c_out, c_in, k, k) * (init_scale * math.sqrt(2.0 / (c_in * k * k))))
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.stride, self.padding = stride, (k - 1) // 2 if padding is None else padding

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class GroupNorm(nn.Module):
    def __init__(self, c, groups=8, eps=1e-5):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(c))
        self.shift = nn.Parameter(torch.zeros(c))
        self.groups, self.eps = groups, eps

    def forward(self, x):
        return F.group_norm(x, self.groups, self.scale, self.shift, self.eps)


class ResBlock(nn.Module):
    def __init__(self, c, e):
        super().__init__()
        self.norm1, self.conv1, self.emb = GroupNorm(c), Conv2d(c, c, 3), Linear(e, c)
        self.norm2, self.conv2 = GroupNorm(c), Conv2d(c, c, 3, 1, 1, 0.0)

    def forward(self, x, c):
        h = self.conv1(F.silu(self.norm1(x)))
        conditioned = h + self.emb(F.silu(c))[:, :, None, None]
        return x + self.conv2(F.silu(self.norm2(conditioned)))


class ResBlockProj(nn.Module):
    def __init__(self, c_in, c_out, e):
        super().__init__()
        self.norm1, self.conv1, self.emb = GroupNorm(c_in), Conv2d(c_in, c_out, 3), Linear(e, c_out)
        self.norm2, self.conv2, self.skip = GroupNorm(c_out), Conv2d(c_out, c_out, 3, 1, 1, 0.0), Conv2d(c_in, c_out, 1)

    def forward(self, x, c):
        h = self.conv1(F.silu(self.norm1(x)))
        conditioned = h + self.emb(F.silu(c))[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(conditioned)))


class PlainResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm1, self.conv1, self.norm2, self.conv2 = GroupNorm(c), Conv2d(c, c, 3), GroupNorm(c), Conv2d(c, c, 3, 1, 1, 0.0)

    def forward(self, x):
        return x + self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))


class NoiseLevelEmbedding(nn.Module):
    """λ → sinusoidal features (geometric frequencies 1/16 .. 16) → Linear → silu → Linear."""

    def __init__(self, f, e, min_freq=0.0625, max_freq=16.0):
        super().__init__()
        self.register_buffer("freqs", min_freq * torch.exp(torch.arange(f // 2) * (math.log(max_freq / min_freq) / (f // 2))))
        self.fc1, self.fc2 = Linear(f, e), Linear(e, e)

    def forward(self, l):
        angles = l[:, None] * self.freqs[None, :]
        return self.fc2(F.silu(self.fc1(torch.cat([torch.sin(angles), torch.cos(angles)], 1))))


# ---------------------------------------------------------------------------------------- std.diffusion


def rows(a, x):
    """a[n]·x[n, ...]: a per-example scalar against any rank."""
    return a.view(-1, *[1] * (x.dim() - 1)) * x


def alpha(l):
    return torch.sqrt(torch.sigmoid(l))


def sigma(l):
    return torch.sqrt(torch.sigmoid(-l))


def noise(x, l, eps):
    return rows(alpha(l), x) + rows(sigma(l), eps)


def eps_from_v(z_t, v, l):
    return rows(sigma(l), z_t) + rows(alpha(l), v)


def low_discrepancy_times(u, batch):
    shifted = u + torch.arange(batch, device=u.device) / batch
    return shifted - torch.floor(shifted)


def linear_lambda(t, start, end):
    return start + (end - start) * t


def cosine_lambda(t, l_max, l_min):
    b = math.atan(math.exp(-0.5 * l_max))
    a = math.atan(math.exp(-0.5 * l_min)) - b
    theta = a * t + b
    return 2.0 * (torch.log(torch.cos(theta)) - torch.log(torch.sin(theta))), 4.0 * a / torch.sin(2.0 * theta)


def elbo_term(eps, eps_hat, neg_dlambda_dt):
    err = (eps - eps_hat).flatten(1)
    return 0.5 * neg_dlambda_dt * (err * err).sum(1)


def elbo_term_x(x, x_hat, l, neg_dlambda_dt):
    """elbo_term for an x-prediction, written in x: ½·(−dλ/dt)·e^λ·‖x − x̂‖²."""
    return elbo_term(x, x_hat, neg_dlambda_dt * torch.exp(l))


def terminal_kl(z, l1):
    a2 = torch.sigmoid(torch.tensor(l1, device=z.device))
    return 0.5 * (a2 * (z * z - 1.0) + F.softplus(torch.tensor(l1, device=z.device))).flatten(1).sum(1)


LAMBDA0, LAMBDA_MIN, LAMBDA_MAX, LOSS_FACTOR, SIGMOID_BIAS = 5.0, -10.0, 10.0, 1.5, 0.0


def prior_loss(net, z_clean, u, eps):
    t = low_discrepancy_times(u, z_clean.shape[0])
    l = linear_lambda(t, LAMBDA0, LAMBDA_MIN)
    z_t = noise(z_clean, l, eps)
    return elbo_term(eps, eps_from_v(z_t, net(z_t, l), l), torch.full_like(t, LAMBDA0 - LAMBDA_MIN))


def decoder_loss(net, predicts, x, z0, u, eps):
    """The sigmoid-weighted decoder ELBO of a network that predicts x (ul_tiny) or v (ul_small)."""
    t = low_discrepancy_times(u, x.shape[0])
    l, neg_dlambda_dt = cosine_lambda(t, LAMBDA_MAX, LAMBDA_MIN)
    x_t = noise(x, l, eps)
    out = net(x_t, z0, l)
    term = elbo_term_x(x, out, l, neg_dlambda_dt) if predicts == "x" else elbo_term(eps, eps_from_v(x_t, out, l), neg_dlambda_dt)
    return torch.sigmoid(SIGMOID_BIAS - l) * term


# ---------------------------------------------------------------------------------------- the models


class LatentDenoiser(nn.Module):
    def __init__(self, z, hidden, depth):
        super().__init__()
        self.embed, self.first = NoiseLevelEmbedding(64, 128), Linear(z, hidden)
        self.blocks = nn.ModuleList(ResMLPBlock(hidden, 128) for _ in range(depth))
        self.norm, self.last = LayerNorm(hidden), Linear(hidden, z, 0.0)

    def forward(self, z_t, l):
        c, h = self.embed(l), self.first(z_t)
        for block in self.blocks:
            h = block(h, c)
        return self.last(F.silu(self.norm(h)))


class PixelDenoiser(nn.Module):
    def __init__(self, z, hidden, depth, pixels=784):
        super().__init__()
        self.embed, self.cond, self.first = NoiseLevelEmbedding(64, 128), Linear(128 + z, 128), Linear(pixels, hidden)
        self.blocks = nn.ModuleList(ResMLPBlock(hidden, 128) for _ in range(depth))
        self.norm, self.last = LayerNorm(hidden), Linear(hidden, pixels, 0.0)

    def forward(self, x_t, z0, l):
        c = self.cond(torch.cat([self.embed(l), z0], 1))
        h = self.first(x_t.flatten(1))
        for block in self.blocks:
            h = block(h, c)
        return self.last(F.silu(self.norm(h))).view_as(x_t)


class UlTiny(nn.Module):
    """models/ul_tiny.ul: MLP encoder (784 → 512 → 512 → 16), residual-MLP prior (width 256, 3 blocks) and
    decoder (width 512, 2 blocks) that predicts x."""

    latent_shape, image_shape, pixels, decoder_predicts = (16,), (1, 28, 28), 28 * 28, "x"

    def __init__(self):
        super().__init__()
        self.encoder = MLP(784, 512, 16, 2)
        self.prior = LatentDenoiser(16, 256, 3)
        self.decoder = PixelDenoiser(16, 512, 2)

    def encode(self, x):
        return self.encoder(x.flatten(1))


class ConvEncoder(nn.Module):
    def __init__(self, zc):
        super().__init__()
        self.stem, self.block0, self.down0 = Conv2d(1, 32, 3), PlainResBlock(32), Conv2d(32, 64, 4, 2, 1)
        self.block1, self.down1 = PlainResBlock(64), Conv2d(64, 64, 4, 2, 1)
        self.block2, self.block3, self.norm, self.out = PlainResBlock(64), PlainResBlock(64), GroupNorm(64), Conv2d(64, zc, 3)

    def forward(self, x):
        h = self.block3(self.block2(self.down1(self.block1(self.down0(self.block0(self.stem(x)))))))
        return self.out(F.silu(self.norm(h)))


class LatentConvDenoiser(nn.Module):
    def __init__(self, zc, c, depth):
        super().__init__()
        self.embed, self.stem = NoiseLevelEmbedding(64, 128), Conv2d(zc, c, 3)
        self.blocks = nn.ModuleList(ResBlock(c, 128) for _ in range(depth))
        self.norm, self.out = GroupNorm(c), Conv2d(c, zc, 3, 1, 1, 0.0)

    def forward(self, z_t, l):
        c, h = self.embed(l), self.stem(z_t)
        for block in self.blocks:
            h = block(h, c)
        return self.out(F.silu(self.norm(h)))


class UNetDenoiser(nn.Module):
    def __init__(self, zc):
        super().__init__()
        self.embed, self.stem = NoiseLevelEmbedding(64, 128), Conv2d(1 + zc, 32, 3)
        self.enc0, self.down0, self.enc1, self.down1 = ResBlock(32, 128), Conv2d(32, 64, 4, 2, 1), ResBlock(64, 128), Conv2d(64, 128, 4, 2, 1)
        self.mid0, self.mid1 = ResBlock(128, 128), ResBlock(128, 128)
        self.up1, self.dec1 = Conv2d(128, 64, 3), ResBlockProj(128, 64, 128)
        self.up0, self.dec0 = Conv2d(64, 32, 3), ResBlockProj(64, 32, 128)
        self.norm, self.out = GroupNorm(32), Conv2d(32, 1, 3, 1, 1, 0.0)

    def forward(self, x_t, z0, l):
        c = self.embed(l)
        up = lambda x, k: F.interpolate(x, scale_factor=k, mode="nearest")
        h0 = self.enc0(self.stem(torch.cat([x_t, up(z0, 4)], 1)), c)
        h1 = self.enc1(self.down0(h0), c)
        h2 = self.mid1(self.mid0(self.down1(h1), c), c)
        u1 = self.dec1(torch.cat([self.up1(up(h2, 2)), h1], 1), c)
        u0 = self.dec0(torch.cat([self.up0(up(u1, 2)), h0], 1), c)
        return self.out(F.silu(self.norm(u0)))


class UlSmall(nn.Module):
    """models/ul_small.ul: conv encoder to 4×8×8 latents, conv prior (64 channels, 4 ResBlocks), U-Net decoder
    on 32×32 conditioned on the upsampled z0."""

    latent_shape, image_shape, pixels, decoder_predicts = (4, 8, 8), (1, 32, 32), 28 * 28, "v"

    def __init__(self):
        super().__init__()
        self.encoder = ConvEncoder(4)
        self.prior = LatentConvDenoiser(4, 64, 4)
        self.decoder = UNetDenoiser(4)

    def encode(self, x):
        return self.encoder(x)


MODELS = {"ul_tiny": (UlTiny, 3e-4), "ul_small": (UlSmall, 2e-4)}


def fit_loss(model, x):
    """The `fit` entry: L = L_prior + loss_factor·L_dec, with the same draws per step as the .ul model."""
    b = x.shape[0]
    randn = lambda *shape: torch.randn(b, *shape, device=x.device)
    z_clean = model.encode(x)
    z0 = noise(z_clean, torch.full((b,), LAMBDA0, device=x.device), randn(*model.latent_shape))
    prior_elbo = prior_loss(model.prior, z_clean, torch.rand(1, device=x.device), randn(*model.latent_shape))
    kl = terminal_kl(z_clean, LAMBDA_MIN)
    decoder_elbo = decoder_loss(model.decoder, model.decoder_predicts, x, z0, torch.rand(1, device=x.device), randn(*model.image_shape))
    prior = (prior_elbo + kl).mean()
    return prior + LOSS_FACTOR * decoder_elbo.mean(), prior / (math.log(2.0) * model.pixels)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), required=True)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--compile", action="store_true", help='torch.compile(mode="reduce-overhead")')
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device(args.device)
    cls, lr = MODELS[args.model]
    model = cls().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    x = torch.rand(args.batch, *cls.image_shape, device=device) * 2 - 1

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss, bpp = fit_loss(model, x)
        loss.backward()
        optimizer.step()
        return loss, bpp

    if args.compile:
        step = torch.compile(step, mode="reduce-overhead")
    cuda = device.type == "cuda"
    # TF32 contractions on both sides: ulc's CUDA target builds in tf32 by default, cuDNN's convolutions use TF32
    # by default, and matmuls do once this is set.
    torch.backends.cuda.matmul.allow_tf32 = True
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    for _ in range(args.warmup):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss, bpp = step()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    print(
        json.dumps(
            {
                "model": args.model,
                "batch": args.batch,
                "params": sum(p.numel() for p in model.parameters()),
                "median_ms": statistics.median(times),
                "min_ms": min(times),
                "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
                "loss": float(loss),
                "bpp": float(bpp),
                "torch": torch.__version__,
                "device": torch.cuda.get_device_name() if cuda else str(device),
                "mode": "torch.compile(reduce-overhead)" if args.compile else "eager",
            }
        )
    )


if __name__ == "__main__":
    main()
