# ruff: noqa: E501  (the ported code's own lines are kept as written)
"""litgpt/utils.py's ``chunked_cross_entropy`` ported to ``fw``, and the tiny versions of
litgpt's named configs that the test_litgpt*.py files build (``ARCHS``, ``tiny_gpt``)."""

import framework as fw

from ._litgpt_config import Config
from ._litgpt_model import GPT, RMSNorm

torch = fw  # the original's ``torch.xxx`` calls read as ``fw.xxx``

TINY = dict(block_size=16, n_layer=2, n_embd=32, n_head=4, vocab_size=48, padded_vocab_size=48)
ARCHS = {
    "pythia": ("pythia-14m", {}),
    "llama3": ("Llama-3.2-1B", dict(n_query_groups=2, intermediate_size=48)),
    "gemma": ("Gemma-2b", dict(n_query_groups=1, head_size=8, intermediate_size=48)),
    "gemma2": ("Gemma-2-2b", dict(n_query_groups=2, head_size=8, intermediate_size=48, sliding_window_size=4, attention_scores_scalar=16)),
    "gemma3": ("Gemma-3-1b-it", dict(n_query_groups=1, head_size=8, intermediate_size=48, sliding_window_size=4)),
    "mixtral": ("Mixtral-8x7B-v0.1", dict(n_query_groups=2, intermediate_size=24, n_expert=4)),
    "phi2": ("phi-2", dict(n_embd=40)),  # head_size 10, rotary_percentage 0.4 -> 4 roped features
    "mistral": ("Mistral-7B-v0.1", dict(n_query_groups=2, intermediate_size=48, sliding_window_size=4)),
    "llama2_32k": ("LLaMA-2-7B-32K", dict(intermediate_size=48)),
}
DEEPSEEK_LIKE = dict(
    name="tiny-deepseek", block_size=16, n_layer=2, n_embd=32, n_head=4, vocab_size=48, padded_vocab_size=48,
    latent_attention=dict(q_lora_rank=8, kv_lora_rank=8, qk_rope_head_dim=4, qk_nope_head_dim=4, v_head_dim=6),
    norm_class_name="RMSNorm", mlp_class_name="LLaMAMoE", intermediate_size=24, moe_intermediate_size=12,
    n_expert=4, n_expert_per_token=2, n_shared_expert=1, n_expert_groups=2, n_topk_groups=1,
    n_topk_scores_per_group=2, first_k_dense_replace=1, routed_scaling_factor=2.5, norm_topk_prob=True,
    rotary_percentage=1.0, parallel_residual=False, bias=False,
)


def tiny_config(arch, **kw):
    name, over = ARCHS[arch]
    return Config.from_name(name, **{**TINY, **over, **kw})


def tiny_gpt(arch, seed=0, **kw):
    """A tiny model of ``arch`` (default nn init), its norm weights spread around 1 so that
    the Gemma ``1 + weight`` offset and the post norms are visible."""
    fw.manual_seed(seed)
    model = GPT(tiny_config(arch, **kw))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (RMSNorm, torch.nn.LayerNorm)) and m.weight is not None:
                m.weight.normal_(1.0, 0.3)
    return model


def tokens(B=2, T=10, seed=1, vocab=48):
    return fw.randint(0, vocab, (B, T), generator=fw.Generator().manual_seed(seed))


# ---- litgpt/utils.py ---------------------------------------------------------------------------

def chunked_cross_entropy(
    logits: torch.Tensor | list[torch.Tensor],
    targets: torch.Tensor,
    chunk_size: int = 128,
    ignore_index: int = -100,
) -> torch.Tensor:
    # lm_head was chunked (we are fine-tuning)
    if isinstance(logits, list):
        # don't want to chunk cross entropy
        if chunk_size == 0:
            logits = torch.cat(logits, dim=1)
            logits = logits.reshape(-1, logits.size(-1))
            targets = targets.reshape(-1)
            return torch.nn.functional.cross_entropy(logits, targets, ignore_index=ignore_index)

        # chunk cross entropy
        logit_chunks = [logit_chunk.reshape(-1, logit_chunk.size(-1)) for logit_chunk in logits]
        target_chunks = [target_chunk.reshape(-1) for target_chunk in targets.split(logits[0].size(1), dim=1)]
        loss_chunks = [
            torch.nn.functional.cross_entropy(logit_chunk, target_chunk, ignore_index=ignore_index, reduction="none")
            for logit_chunk, target_chunk in zip(logit_chunks, target_chunks)
        ]
        non_masked_elems = (targets != ignore_index).sum()
        # See [non_masked_elems div note]
        return torch.cat(loss_chunks).sum() / non_masked_elems.maximum(torch.ones_like(non_masked_elems))

    # no chunking at all
    logits = logits.reshape(-1, logits.size(-1))
    targets = targets.reshape(-1)
    if chunk_size == 0:
        return torch.nn.functional.cross_entropy(logits, targets, ignore_index=ignore_index)

    # lm_head wasn't chunked, chunk cross entropy
    logit_chunks = logits.split(chunk_size)
    target_chunks = targets.split(chunk_size)
    loss_chunks = [
        torch.nn.functional.cross_entropy(logit_chunk, target_chunk, ignore_index=ignore_index, reduction="none")
        for logit_chunk, target_chunk in zip(logit_chunks, target_chunks)
    ]
    non_masked_elems = (targets != ignore_index).sum()
    # [non_masked_elems div note]:
    #   max(1, non_masked_elems) would be more ergonomic to avoid a division by zero. However that
    #   results in a python int which is then passed back to torch division. By using the
    #   `x.maximum(torch.ones_like(x))` pattern we avoid a cudaStreamSynchronize.
    return torch.cat(loss_chunks).sum() / non_masked_elems.maximum(torch.ones_like(non_masked_elems))
