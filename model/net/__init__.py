"""The network: a causal Transformer (or a GRU, for the baseline) over behavior-event tokens.

    config      Architecture, NetConfig and the network's constants
    attention   causal self-attention and the Transformer block
    copy_head   the pointer over the window and its mixture with the softmax
    losses      target log-probabilities (full or sampled softmax), cross-entropies
    network     SeqNet: embeddings, encoder, heads, forward and its loss
    scorer      Scorer, the exported graph, and the per-event surprise
"""
