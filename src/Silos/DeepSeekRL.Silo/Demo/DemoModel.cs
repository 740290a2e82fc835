using System.Globalization;

namespace DeepSeekRL.Silo.Demo;

/// <summary>
/// The demo's tiny DeepSeek-V3: 4 layers (the first dense), MoE with 16 routed experts (top 4, sigmoid scores,
/// group-limited routing over 4 groups, top 2) and 1 shared, MLA (q rank 96, kv rank 64, decoupled RoPE 16), one MTP
/// module; about 2.3 M parameters with a character vocabulary.
/// </summary>
internal static class DemoModel
{
    /// <summary>The generation budget of a completion: the longest guess-and-check traces (a failed attempt, its check,
    /// <c>wait</c>, the right attempt, its check and the answer) are about 130 Countdown characters and 144 tokens of a
    /// repaired 4-digit addition (9999 + 9999), each character a token or less.</summary>
    public const int MaxNewTokens = 160;

    /// <summary>The config.json for a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    /// <param name="vocabSize">The model's vocabulary size (at least the tokenizer's).</param>
    /// <returns>The JSON.</returns>
    public static string ConfigJson(int vocabSize) => string.Create(CultureInfo.InvariantCulture, $$"""
        {
          "architectures": ["DeepseekV3ForCausalLM"],
          "model_type": "deepseek_v3",
          "vocab_size": {{vocabSize}},
          "hidden_size": 128,
          "intermediate_size": 384,
          "moe_intermediate_size": 64,
          "num_hidden_layers": 4,
          "first_k_dense_replace": 1,
          "num_attention_heads": 4,
          "num_key_value_heads": 4,
          "q_lora_rank": 96,
          "kv_lora_rank": 64,
          "qk_nope_head_dim": 32,
          "qk_rope_head_dim": 16,
          "v_head_dim": 32,
          "n_routed_experts": 16,
          "num_experts_per_tok": 4,
          "n_shared_experts": 1,
          "n_group": 4,
          "topk_group": 2,
          "routed_scaling_factor": 2.5,
          "norm_topk_prob": true,
          "scoring_func": "sigmoid",
          "topk_method": "noaux_tc",
          "hidden_act": "silu",
          "max_position_embeddings": 256,
          "rope_theta": 10000.0,
          "rope_scaling": null,
          "rope_interleave": true,
          "rms_norm_eps": 1e-6,
          "num_nextn_predict_layers": 1,
          "initializer_range": 0.02,
          "bos_token_id": 0,
          "eos_token_id": 1,
          "tie_word_embeddings": false,
          "attention_bias": false
        }
        """);
}
