using System.Collections.Concurrent;
using DeepSeekRL.Campaigns.Specs;
using DeepSeekRL.Grains.Policies;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>The endpoint clients of a process, one per campaign (each with its own resilience pipeline).</summary>
public sealed class EndpointPolicies : IDisposable
{
    private readonly ConcurrentDictionary<long, EndpointPolicyClient> _clients = new();

    /// <summary>Samples n completions of a rendered prompt; samples the endpoint fails to return are counted, not thrown.</summary>
    /// <param name="definition">The campaign (its policy is an endpoint).</param>
    /// <param name="prompt">The rendered prompt.</param>
    /// <param name="n">Samples wanted.</param>
    /// <param name="temperature">Temperature (0 = greedy).</param>
    /// <param name="topP">Nucleus mass.</param>
    /// <param name="maxTokens">Tokens at most.</param>
    /// <param name="seed">The seed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The samples and the number that failed.</returns>
    public async Task<(IReadOnlyList<SampledCompletion> Samples, int Errors)> SampleAsync(
        CampaignDefinition definition, string prompt, int n, double temperature, double topP, int maxTokens, ulong seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var spec = (EndpointPolicySpec)definition.Spec.Policy;
        var client = _clients.GetOrAdd(definition.Id, _ => new EndpointPolicyClient(new EndpointPolicyOptions
        {
            BaseUrl = spec.Url,
            Model = spec.Model,
            ApiKey = spec.ApiKeyEnvironmentVariable is { } name ? Environment.GetEnvironmentVariable(name) : null,
        }));
        try
        {
            var samples = await client.SampleAsync(prompt, n, new EndpointSamplingParameters
            {
                Temperature = temperature,
                TopP = topP,
                MaxTokens = maxTokens,
                Seed = (long)(seed & 0x7FFF_FFFF_FFFF_FFFF),
            }, cancellationToken);
            return (samples.Select(s => new SampledCompletion(RolloutSampler.Storable(s.Text), [], [], s.FinishReason)).ToList(), n - samples.Count);
        }
        catch (Exception ex) when (ex is EndpointResponseException or HttpRequestException or TimeoutException
            or Polly.CircuitBreaker.BrokenCircuitException or Polly.Timeout.TimeoutRejectedException)
        {
            return ([], n);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var client in _clients.Values)
        {
            client.Dispose();
        }
    }
}
