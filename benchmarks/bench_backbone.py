"""Throughput of the nttracks NT backbone vs transformers' EsmForMaskedLM, same weights, same windows;
and of the 6-mer tokenizer that feeds it.

    python benchmarks/bench_backbone.py                       # small CPU shape, a few seconds
    python benchmarks/bench_backbone.py --hidden 1024 --layers 29 --heads 16 --tokens 2048 --batch 8
    python benchmarks/bench_backbone.py --device cuda --bf16  # + bf16 tokens/s and MFU, NT-v2-500M shape

Both models are the masked-LM (backbone + LM head) of one random rotary ESM config, GELU
feed-forward (upstream transformers has no SwiGLU); transformers runs its SDPA attention. The
``--bf16`` part times nttracks alone on the real NT-v2 architecture (SwiGLU) and reports model
FLOPs utilization against the GPU's dense bf16 peak. The tokenizer is timed first, on one torch thread,
over the pipeline's batch (64 windows of 12,282 bases), without and with N (issue 3 asks for at least
20 Mbp/s per core on the clean path).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from nttracks.models.loading import lm_hf_name, load_strict
from nttracks.models.nt import NTConfig, NTForMaskedLM, init_weights
from nttracks.models.tokenizer import V2, tokenize

# dense bf16 tensor-core peaks (TFLOP/s), by substring of torch.cuda.get_device_name()
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def timed(fns, repeats: int, sync) -> list[float]:
    """Best-of wall times of each of ``fns`` in seconds, after one warm-up call each.

    The calls are interleaved so that load from other processes hits all of them alike.
    """
    best = [float("inf")] * len(fns)
    for fn in fns:
        fn()
        sync()
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            sync()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def flops_per_token(config: NTConfig, tokens: int) -> float:
    """Forward FLOPs per token (2 per multiply-add): projections, attention scores/values, FFN, LM head."""
    h, i = config.hidden, config.intermediate
    ffn = 2 * h * (2 * i if config.glu else i) + 2 * i * h
    per_layer = 4 * 2 * h * h + 2 * 2 * tokens * h + ffn
    return config.layers * per_layer + 2 * h * h + 2 * h * config.vocab_size


def tokenizer_throughput(repeats: int) -> None:
    """Mbp/s of ``tokenize`` on one torch thread, 64 x 12,282 random bases, without and with N."""
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 4, (64, 12_282), dtype=np.uint8)
    with_n = clean.copy()
    with_n[:, 100] = 4
    with_n[::2, 5000:5003] = 4
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        (t_clean, t_n) = timed([lambda: tokenize(clean, V2), lambda: tokenize(with_n, V2)], repeats, lambda: None)
    finally:
        torch.set_num_threads(threads)
    print(f"tokenizer, 1 thread, 64 x 12,282 bases: {clean.size / t_clean / 1e6:.1f} Mbp/s clean, "
          f"{with_n.size / t_n / 1e6:.1f} Mbp/s with N (target: >= 20 Mbp/s clean)")


def compare_with_transformers(args, device: torch.device, sync) -> None:
    import transformers

    hf_config = transformers.EsmConfig(
        vocab_size=4107,
        hidden_size=args.hidden,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        intermediate_size=4 * args.hidden,
        position_embedding_type="rotary",
        max_position_embeddings=2050,
        token_dropout=False,
        pad_token_id=1,
        mask_token_id=2,
        layer_norm_eps=1e-12,
        tie_word_embeddings=False,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    reference = transformers.EsmForMaskedLM(hf_config).eval().to(device)
    config = NTConfig(
        4107, args.hidden, args.layers, args.heads, 4 * args.hidden, glu=False, ffn_bias=True, rotary=True
    )
    ours = NTForMaskedLM(config)
    state = {k: v.cpu() for k, v in reference.state_dict().items()}
    load_strict(ours, state, lm_hf_name, "transformers model")
    ours = ours.eval().to(device)

    ids = torch.randint(6, 4102, (args.batch, args.tokens), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = 3
    ids = ids.to(device)
    with torch.inference_mode():
        diff = (ours(ids) - reference(input_ids=ids).logits).abs().max().item()
        t_ours, t_ref = timed([lambda: ours(ids), lambda: reference(input_ids=ids)], args.repeats, sync)
    n = args.batch * args.tokens
    print(
        f"shape: hidden {args.hidden}, layers {args.layers}, heads {args.heads}, "
        f"{args.batch} x {args.tokens} tokens, fp32, {device}, {torch.get_num_threads()} threads"
    )
    print(f"max |logit difference|: {diff:.2e}")
    print(f"nttracks     : {n / t_ours:12,.0f} tokens/s")
    print(f"transformers : {n / t_ref:12,.0f} tokens/s")
    print(f"ratio (nttracks / transformers): {t_ref / t_ours:.2f}")


def bf16_mfu(args, device: torch.device, sync) -> None:
    config = NTConfig(4107, 1024, 29, 16, 4096, glu=True, ffn_bias=False, rotary=True)
    model = NTForMaskedLM(config)
    init_weights(model, torch.Generator().manual_seed(0))
    model = model.to(device=device, dtype=torch.bfloat16).eval()
    tokens = 2048
    ids = torch.randint(6, 4102, (args.bf16_batch, tokens), device=device)
    ids[:, 0] = 3
    with torch.inference_mode():
        (seconds,) = timed([lambda: model(ids)], args.repeats, sync)
    rate = args.bf16_batch * tokens / seconds
    achieved = rate * flops_per_token(config, tokens) / 1e12
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    print(
        "NT-v2-500M shape (hidden 1024, 29 layers, 16 heads, SwiGLU), bf16, "
        f"{args.bf16_batch} x {tokens} tokens, {name}"
    )
    print(f"nttracks bf16: {rate:12,.0f} tokens/s, {achieved:.1f} TFLOP/s", end="")
    print(f", MFU {achieved / peak:.1%} of {peak:.0f} TFLOP/s" if peak else " (peak unknown for this device)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=512, help="tokens per window, CLS included")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="also time bf16 on the NT-v2-500M shape (GPU)")
    parser.add_argument("--bf16-batch", type=int, default=16)
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    tokenizer_throughput(args.repeats)
    compare_with_transformers(args, device, sync)
    if args.bf16:
        bf16_mfu(args, device, sync)


if __name__ == "__main__":
    main()
