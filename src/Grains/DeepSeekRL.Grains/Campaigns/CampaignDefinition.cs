using System.Collections.Concurrent;
using System.Text.Json;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Model.Config;
using DeepSeekRL.Rewards.Pipeline;
using DeepSeekRL.Rewards.Plugins;
using DeepSeekRL.Storage.Stores;
using DeepSeekRL.Tokenizers;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>
/// What every silo needs to work on a campaign, read from PostgreSQL (never from the spec's files): the validated
/// spec, the dataset splits, the tokenizer and model config of a native policy, and the reward pipeline.
/// </summary>
public sealed class CampaignDefinition : IDisposable
{
    private readonly PluginLoader _plugins;

    private CampaignDefinition(
        long id, CampaignSpec spec, IReadOnlyList<CampaignPrompt> train, IReadOnlyList<CampaignPrompt> eval,
        BpeTokenizer? tokenizer, DeepSeekV3Config? config, string? configJson, RewardPipeline pipeline, PluginLoader plugins)
    {
        Id = id;
        Spec = spec;
        Train = train;
        Eval = eval;
        Tokenizer = tokenizer;
        Config = config;
        ConfigJson = configJson;
        Rewards = pipeline;
        _plugins = plugins;
        if (tokenizer is not null)
        {
            Bos = tokenizer.TokenToId(ChatTemplate.Bos);
            Eos = tokenizer.TokenToId(ChatTemplate.Eos);
        }
    }

    /// <summary>The campaign id.</summary>
    public long Id { get; }

    /// <summary>The spec (paths resolved, files not read again).</summary>
    public CampaignSpec Spec { get; }

    /// <summary>The training prompts.</summary>
    public IReadOnlyList<CampaignPrompt> Train { get; }

    /// <summary>The evaluation prompts.</summary>
    public IReadOnlyList<CampaignPrompt> Eval { get; }

    /// <summary>The native policy's tokenizer (null for an endpoint policy).</summary>
    public BpeTokenizer? Tokenizer { get; }

    /// <summary>The native policy's model config (null for an endpoint policy).</summary>
    public DeepSeekV3Config? Config { get; }

    /// <summary>The native policy's config.json text.</summary>
    public string? ConfigJson { get; }

    /// <summary>The BOS id, if the tokenizer has one.</summary>
    public int? Bos { get; }

    /// <summary>The EOS id (stops generation), if the tokenizer has one.</summary>
    public int? Eos { get; }

    /// <summary>The reward pipeline.</summary>
    public RewardPipeline Rewards { get; }

    /// <summary>Whether the policy is updated (train mode with steps).</summary>
    public bool Trains => Spec.Mode == CampaignMode.Train && Spec.Policy is NativePolicySpec;

    /// <summary>The prompt text the policy sees (the template applied).</summary>
    /// <param name="prompt">The question.</param>
    /// <returns>The rendered prompt.</returns>
    public string RenderPrompt(string prompt) => Spec.Dataset.Template == PromptTemplate.R1
        ? ChatTemplate.RenderR1([new ChatMessage("user", prompt)], addGenerationPrompt: true)
        : ChatTemplate.RenderR1Zero(prompt);

    /// <summary>The prompt's token ids for a native policy (BOS first).</summary>
    /// <param name="prompt">The question.</param>
    /// <returns>The ids.</returns>
    public int[] EncodePrompt(string prompt)
    {
        var tokenizer = Tokenizer ?? throw new InvalidOperationException("an endpoint policy has no tokenizer");
        return Spec.Dataset.Template == PromptTemplate.R1
            ? ChatTemplate.EncodeR1(tokenizer, [new ChatMessage("user", prompt)], addGenerationPrompt: true)
            : ChatTemplate.EncodeR1Zero(tokenizer, prompt);
    }

    /// <summary>
    /// The completion as the reward rules see it: with the R1 template the generation prompt already opened
    /// <c>&lt;think&gt;\n</c>, so it is put back in front.
    /// </summary>
    /// <param name="completion">The generated text.</param>
    /// <returns>The text to score.</returns>
    public string ScoredText(string completion) =>
        Spec.Dataset.Template == PromptTemplate.R1 ? ChatTemplate.ThinkOpen + completion : completion;

    /// <summary>Loads a campaign's definition from the campaign store.</summary>
    /// <param name="store">The campaign store.</param>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The definition.</returns>
    /// <exception cref="InvalidDataException">The campaign does not exist or its stored spec no longer validates.</exception>
    public static async Task<CampaignDefinition> LoadAsync(CampaignStore store, long campaignId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(store);
        var stored = await store.LoadAsync(campaignId, cancellationToken)
            ?? throw new InvalidDataException($"campaign {campaignId} does not exist");
        var (specJson, baseDir, tokenizerJson, configJson) = (stored.SpecJson, stored.BaseDirectory, stored.Tokenizer, stored.ModelConfig);
        using var document = JsonDocument.Parse(specJson);
        var validation = CampaignSpecValidator.Validate(document.RootElement, baseDir, checkFiles: false);
        var spec = validation.Spec ?? throw new InvalidDataException($"campaign {campaignId}: stored spec is invalid: {string.Join("; ", validation.Errors)}");
        var plugins = new PluginLoader();
        var (pipeline, error) = RulesFile.Build(spec.Rewards.Json, baseDir, plugins);
        if (pipeline is null)
        {
            plugins.Dispose();
            throw new InvalidDataException($"campaign {campaignId}: rewards: {error}");
        }

        BpeTokenizer? tokenizer = null;
        DeepSeekV3Config? config = null;
        if (tokenizerJson is not null)
        {
            tokenizer = TokenizerJson.Parse(System.Text.Encoding.UTF8.GetBytes(tokenizerJson), $"campaign {campaignId} tokenizer");
        }

        if (configJson is not null)
        {
            using var configDocument = JsonDocument.Parse(configJson);
            var (parsed, configError) = DeepSeekV3Config.Parse(configDocument.RootElement);
            config = parsed ?? throw new InvalidDataException($"campaign {campaignId}: stored model config is invalid: {configError}");
        }

        return new CampaignDefinition(campaignId, spec, stored.Train, stored.Eval, tokenizer, config, configJson, pipeline, plugins);
    }

    /// <inheritdoc/>
    public void Dispose() => _plugins.Dispose();
}

/// <summary>The definitions a process has loaded, one per campaign (a campaign's inputs never change).</summary>
/// <param name="store">The campaign store.</param>
public sealed class CampaignCatalog(CampaignStore store) : IDisposable
{
    private readonly ConcurrentDictionary<long, Lazy<Task<CampaignDefinition>>> _loaded = new();

    /// <summary>The campaign's definition, loaded on first use.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The definition.</returns>
    public async Task<CampaignDefinition> GetAsync(long campaignId, CancellationToken cancellationToken)
    {
        var lazy = _loaded.GetOrAdd(campaignId, id => new Lazy<Task<CampaignDefinition>>(() => CampaignDefinition.LoadAsync(store, id, CancellationToken.None)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken);
        }
        catch (Exception) when (lazy.Value.IsFaulted)
        {
            _loaded.TryRemove(new KeyValuePair<long, Lazy<Task<CampaignDefinition>>>(campaignId, lazy));
            throw;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var lazy in _loaded.Values)
        {
            if (lazy.IsValueCreated && lazy.Value.IsCompletedSuccessfully)
            {
                lazy.Value.Result.Dispose();
            }
        }
    }
}
