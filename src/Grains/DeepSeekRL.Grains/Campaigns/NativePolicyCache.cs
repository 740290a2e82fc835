using System.Collections.Concurrent;
using System.Diagnostics;
using DeepSeekRL.Storage.Policies;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Model.Checkpoints;
using DeepSeekRL.Model.Engines;
using DeepSeekRL.Model.Weights;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>A loaded policy version of a native-model campaign, on the campaign's engine.</summary>
/// <param name="Version">The version.</param>
/// <param name="Sampler">The policy on its engine (one caller at a time).</param>
public sealed record LoadedPolicy(int Version, IPolicySampler Sampler);

/// <summary>
/// The policy versions a process holds, per campaign: a rollout worker asks for the version an item needs and gets
/// the held one, or the version fetched from the registry (checksum-verified) and loaded.
/// </summary>
/// <param name="registry">The policy registry.</param>
/// <param name="catalog">The campaign definitions.</param>
/// <param name="engines">The model engines (the campaign's spec names its backend and device).</param>
/// <param name="threads">Threads for the model's kernels.</param>
public sealed class NativePolicyCache(PolicyRegistry registry, CampaignCatalog catalog, ModelEngines engines, int threads = 2)
{
    private readonly ConcurrentDictionary<long, LoadedPolicy> _held = new();
    private readonly ConcurrentDictionary<long, (int Version, float[] Data)> _offered = new();
    private readonly SemaphoreSlim _loading = new(1, 1);

    /// <summary>Loads performed (for tests and metrics).</summary>
    public int Loads { get; private set; }

    /// <summary>Returns the campaign's policy at <paramref name="version"/>, loading it when another version is held.</summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="version">The version.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The policy and the seconds spent loading it (0 when held).</returns>
    public async Task<(LoadedPolicy Policy, double LoadSeconds)> GetAsync(long campaignId, int version, CancellationToken cancellationToken)
    {
        if (_held.TryGetValue(campaignId, out var held) && held.Version == version)
        {
            return (held, 0);
        }

        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (_held.TryGetValue(campaignId, out held) && held.Version == version)
            {
                return (held, 0);
            }

            var started = Stopwatch.GetTimestamp();
            if (_offered.TryGetValue(campaignId, out var offer) && offer.Version == version && held is not null)
            {
                // The learner of this process published it: same bytes as the registry's, no download.
                held.Sampler.SetWeights(offer.Data);
                held = held with { Version = version };
                _held[campaignId] = held;
                return (held, Stopwatch.GetElapsedTime(started).TotalSeconds);
            }

            var definition = await catalog.GetAsync(campaignId, cancellationToken);
            var published = await registry.GetAsync(campaignId, version, cancellationToken)
                ?? throw new InvalidOperationException($"policy version {version} of campaign {campaignId} is not published");
            var directory = Directory.CreateTempSubdirectory($"deepseekrl-policy-{campaignId}-v{version}-").FullName;
            try
            {
                await File.WriteAllTextAsync(Path.Combine(directory, ModelCheckpoint.ConfigFileName), definition.ConfigJson, cancellationToken);
                var downloaded = await registry.DownloadAsync(published, Path.Combine(directory, ModelCheckpoint.WeightsFileName), cancellationToken);
                if (!downloaded.Succeeded)
                {
                    throw new InvalidDataException(downloaded.Error);
                }

                var (weights, error) = ModelWeights.LoadDirectory(directory);
                if (weights is null)
                {
                    throw new InvalidDataException($"policy version {version} of campaign {campaignId}: {error}");
                }

                LoadedPolicy policy;
                if (held is not null && SameLayout(held.Sampler, weights))
                {
                    // Reuse the held model: only the weights change between versions.
                    held.Sampler.SetWeights(weights.Data);
                    policy = held with { Version = version };
                }
                else
                {
                    held?.Sampler.Dispose();
                    var spec = definition.Spec.Policy as NativePolicySpec;
                    var engine = engines.Get(spec?.Backend ?? ModelBackends.Native);
                    policy = new LoadedPolicy(version, engine.CreateSampler(weights, new ModelEngineOptions { Device = spec?.Device ?? "cpu", Threads = threads }));
                }

                _held[campaignId] = policy;
                Loads++;
                return (policy, Stopwatch.GetElapsedTime(started).TotalSeconds);
            }
            finally
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        finally
        {
            _loading.Release();
        }
    }

    /// <summary>
    /// Offers a version this process's learner has just published (a copy of its weights), so that a rollout worker
    /// of the same process takes it without a download. Only the newest offer per campaign is kept.
    /// </summary>
    /// <param name="campaignId">The campaign.</param>
    /// <param name="version">The published version.</param>
    /// <param name="data">The weights (copied).</param>
    public void Offer(long campaignId, int version, ReadOnlySpan<float> data) => _offered[campaignId] = (version, data.ToArray());

    /// <summary>The campaigns whose policy or offered weights this process holds.</summary>
    public IReadOnlyList<long> HeldCampaigns => [.. _held.Keys.Union(_offered.Keys)];

    /// <summary>
    /// Drops a campaign's policy and offered weights (it finished) and disposes its sampler. Not while the sampler
    /// generates: <see cref="RolloutSampler.ReleaseAsync"/> calls it between turns.
    /// </summary>
    /// <param name="campaignId">The campaign.</param>
    /// <returns>Whether anything was held.</returns>
    public bool Forget(long campaignId)
    {
        var found = _offered.TryRemove(campaignId, out _);
        if (_held.TryRemove(campaignId, out var held))
        {
            held.Sampler.Dispose();
            found = true;
        }

        return found;
    }

    private static bool SameLayout(IPolicySampler sampler, ModelWeights weights) =>
        Model.Config.ParameterLayout.Count(sampler.Config) == weights.Data.Length;
}
