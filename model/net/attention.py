"""Causal self-attention and the pre-norm Transformer block (as in GPT-2 / nanoGPT)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from model.net.config import NetConfig


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.d_model = cfg.d_model
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, T, C); mask (B, 1, T, T) bool, True where query t may attend to key s."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.d_model, dim=2)  # C as a constant, for tracing
        q = q.view(B, T, self.n_heads, -1).transpose(1, 2)  # (B, H, T, Ch)
        k = k.view(B, T, self.n_heads, -1).transpose(1, 2)
        v = v.view(B, T, self.n_heads, -1).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, Ch)
        y = y.transpose(1, 2).reshape(B, T, C)
        return F.dropout(self.proj(y), p, self.training)


class Block(nn.Module):
    """Pre-norm Transformer block (as in GPT-2 / nanoGPT)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, 4 * cfg.d_model),
            nn.GELU(),
            nn.Linear(4 * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x), mask)
        return x + self.mlp(self.ln2(x))
