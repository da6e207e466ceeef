"""The peer for `trickbook bench train`: the same ResNets trained and evaluated by PyTorch on the CPU.

Run from a venv outside the repository that has torch and torchvision (from PyPI):
    python bench/pytorch_resnet.py --model resnet20 [--channels-last] [--bf16]
It prints lines in the form trickbook's benchmark prints: "train N images/s", "eval N images/s".
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Basic(nn.Module):
    """ResNet-20's block, with a 1x1 projection shortcut when the shape changes (as trickbook's variant b)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.short is None else self.short(x)))


class ResNet20(nn.Module):
    def __init__(self, classes=10, width=16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers, cin = [], width
        for i, cout in enumerate([width, 2 * width, 4 * width]):
            for j in range(3):
                layers.append(Basic(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1))


def measure(seconds, step):
    step()  # warm-up
    runs, start = 0, time.perf_counter()
    while runs < 3 or time.perf_counter() - start < seconds:
        step()
        runs += 1
    return (time.perf_counter() - start) / runs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet20", choices=["resnet20", "resnet50"])
    p.add_argument("--batch", type=int)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.model == "resnet20":
        net, shape, classes, batch = ResNet20(), (1, 28, 28), 10, a.batch or 128
    else:
        import torchvision

        net, shape, classes, batch = torchvision.models.resnet50(), (3, 224, 224), 1000, a.batch or 16
    x = torch.randn(batch, *shape)
    y = torch.randint(0, classes, (batch,))
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = x.to(memory_format=fmt)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)

    def train():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    def evaluate():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            net(x)

    net.train()
    t = measure(a.seconds, train)
    net.eval()
    e = measure(a.seconds, evaluate)
    how = ("bf16 autocast" if a.bf16 else "fp32") + (", channels-last" if a.channels_last else "")
    print(f"PyTorch {torch.__version__} {a.model}, batch {batch}, {how}, {a.threads} threads")
    print(f"train  {batch / t:8.1f} images/s  ({t:.3f} s a step)")
    print(f"eval   {batch / e:8.1f} images/s  ({e:.3f} s a batch)")


if __name__ == "__main__":
    main()
