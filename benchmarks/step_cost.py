"""Where one CPU training step of multilingual-e5-small goes, by frozen part (indicative).

One process, one thread, random weights of e5-small's shape (speed does not depend on the
values), a batch of 16 sequences of 45 tokens (the mean NLI pair), fused AdamW, the `<s>` head.
Reports process CPU seconds per step for forward, backward, gradient clipping and the optimizer
step, after 2 warm-up steps, for the embeddings frozen plus 0, 6 and 9 of the 12 layers.
``--precision fp32 bf16`` repeats everything under bf16 autocast (fp32 master weights, as a
stage with ``train.precision: bf16`` runs) after fp32, in the same process, to show what a CPU
with native bf16 (AMX / AVX512-BF16) gains. This is a breakdown, not a throughput benchmark
(see train_throughput.py for those):
    python benchmarks/step_cost.py [--steps 10] [--frozen-layers 0 6 9] [--precision fp32 bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from transformers import XLMRobertaConfig, XLMRobertaModel

from bench_common import CONFIGS


def main() -> None:
    """Print one line per frozen-layer count, then the inference forward cost."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--frozen-layers", type=int, nargs="+", default=[0, 6, 9])
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"])
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = XLMRobertaModel(XLMRobertaConfig(**CONFIGS["e5small"]), add_pooling_layer=False)
    head = torch.nn.Sequential(torch.nn.Linear(384, 384), torch.nn.Tanh(), torch.nn.Linear(384, 3))
    batch, length = 16, 45
    ids = torch.randint(5, 200_000, (batch, length))  # [B, T]
    mask = torch.ones(batch, length, dtype=torch.long)
    labels = torch.randint(0, 3, (batch,))
    for precision in args.precision:
        _steps(model, head, ids, mask, labels, args.frozen_layers, args.steps, precision)


def _autocast(precision: str) -> contextlib.AbstractContextManager[object]:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _steps(
    model: XLMRobertaModel, head: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor,
    labels: torch.Tensor, frozen_layers: list[int], steps: int, precision: str,
) -> None:  # fmt: skip
    """Print the per-part CPU cost of a step for each frozen-layer count, then of a forward."""
    batch, length = ids.shape
    model.train()
    for frozen in frozen_layers:
        for param in model.parameters():
            param.requires_grad_(True)
        for module in [model.embeddings, *model.encoder.layer[:frozen]]:
            for param in module.parameters():
                param.requires_grad_(False)
        params = [q for q in [*model.parameters(), *head.parameters()] if q.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
        spent = [0.0, 0.0, 0.0, 0.0]
        for step in range(steps + 2):
            t0 = time.process_time()
            with _autocast(precision):
                hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, T, H]
                logits = head(hidden[:, 0])  # [B, 3]
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            t1 = time.process_time()
            loss.backward()
            t2 = time.process_time()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            t3 = time.process_time()
            opt.step()
            opt.zero_grad(set_to_none=True)
            t4 = time.process_time()
            if step >= 2:
                for i, dt in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    spent[i] += dt / steps
        total = sum(spent)
        print(f"{precision}: embeddings + {frozen} layers frozen: forward {spent[0]:.3f} backward "
              f"{spent[1]:.3f} clip {spent[2]:.3f} optimizer {spent[3]:.3f} = {total:.3f} "
              f"CPU s/step, {batch * length / total:.0f} tokens/CPU s")  # fmt: skip
    model.eval()
    with torch.no_grad(), _autocast(precision):
        t0 = time.process_time()
        for _ in range(5):
            model(input_ids=ids, attention_mask=mask)
        dt = (time.process_time() - t0) / 5
    rate = batch * length / dt
    print(f"{precision}: inference forward: {dt:.3f} CPU s/batch, {rate:.0f} tokens/CPU s")


if __name__ == "__main__":
    main()
