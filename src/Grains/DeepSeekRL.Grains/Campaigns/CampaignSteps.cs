using DeepSeekRL.Storage.Queue;
using DeepSeekRL.Storage.Stores;

namespace DeepSeekRL.Grains.Campaigns;

/// <summary>The work item kinds of a campaign.</summary>
public static class CampaignWork
{
    /// <summary>Rollout items.</summary>
    public const string Rollout = "rollout";

    /// <summary>Reward items.</summary>
    public const string Reward = "reward";

    /// <summary>Evaluation items.</summary>
    public const string Evaluation = "eval";

    /// <summary>Prompts per evaluation item.</summary>
    public const int EvaluationChunk = 16;

    /// <summary>Extra dynamic-sampling rounds a step may ask for before it goes ahead with the groups it has.</summary>
    public const int MaxExtraRounds = 3;
}

/// <summary>
/// A campaign's coordinator: lifecycle through the campaign store, and cutting of steps and evaluations into work
/// items. Cutting is deterministic (prompt order and seeds depend only on the spec's seed and the step) and
/// idempotent (items are keyed), so a restarted coordinator cuts the same work again without duplicating it.
/// </summary>
/// <param name="definition">The campaign.</param>
/// <param name="store">The campaign store.</param>
/// <param name="queue">The work queue.</param>
public sealed class CampaignSteps(CampaignDefinition definition, CampaignStore store, WorkQueue queue)
{
    private int[]? _order;
    private int _orderEpoch = -1;

    /// <inheritdoc/>
    public long CampaignId => definition.Id;

    /// <inheritdoc/>
    public async Task<CampaignStatus> GetStatusAsync(CancellationToken cancellationToken) =>
        await store.GetStatusAsync(definition.Id, cancellationToken) ?? throw new InvalidOperationException($"campaign {definition.Id} does not exist");

    /// <inheritdoc/>
    public Task<CampaignState> StartAsync(CancellationToken cancellationToken) =>
        Transition(CampaignState.Running, [CampaignState.Created], cancellationToken);

    /// <inheritdoc/>
    public Task<CampaignState> PauseAsync(CancellationToken cancellationToken) =>
        Transition(CampaignState.Paused, [CampaignState.Created, CampaignState.Running], cancellationToken);

    /// <inheritdoc/>
    public Task<CampaignState> ResumeAsync(CancellationToken cancellationToken) =>
        Transition(CampaignState.Running, [CampaignState.Paused], cancellationToken);

    /// <inheritdoc/>
    public Task<CampaignState> CancelAsync(CancellationToken cancellationToken) =>
        Transition(CampaignState.Cancelled, [CampaignState.Created, CampaignState.Running, CampaignState.Paused], cancellationToken);

    /// <inheritdoc/>
    public async Task<IReadOnlyList<RolloutWork>> CutStepAsync(int step, int round, int groups, int policyVersion, CancellationToken cancellationToken)
    {
        var algorithm = definition.Spec.Algorithm;
        var work = new List<RolloutWork>(groups);
        for (var slot = 0; slot < groups; slot++)
        {
            var position = round == 0
                ? ((long)step * algorithm.PromptsPerStep) + slot
                : ((long)algorithm.Steps * algorithm.PromptsPerStep) + ((((long)step * CampaignWork.MaxExtraRounds) + round - 1) * algorithm.PromptsPerStep) + slot;
            work.Add(new RolloutWork(definition.Id, step, round, slot, PromptAt(position), algorithm.GroupSize, policyVersion, GroupSeed(step, round, slot)));
        }

        var items = work.Select(w => new NewWorkItem(
            definition.Id, CampaignWork.Rollout, $"rollout/{w.Step}/{w.Round}/{w.Slot}", CampaignJson.Serialize(w), w.PolicyVersion)).ToList();
        await queue.EnqueueAsync(items, cancellationToken);
        return work;
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<EvaluationWork>> EvaluateAsync(int step, int policyVersion, CancellationToken cancellationToken)
    {
        var work = new List<EvaluationWork>();
        for (var first = 0; first < definition.Eval.Count; first += CampaignWork.EvaluationChunk)
        {
            work.Add(new EvaluationWork(definition.Id, step, policyVersion, first, Math.Min(CampaignWork.EvaluationChunk, definition.Eval.Count - first)));
        }

        var items = work.Select(w => new NewWorkItem(
            definition.Id, CampaignWork.Evaluation, $"eval/{w.Step}/{w.FirstPrompt}", CampaignJson.Serialize(w), w.PolicyVersion, Priority: -1)).ToList();
        await queue.EnqueueAsync(items, cancellationToken);
        return work;
    }

    /// <summary>The train prompt at a position of the campaign's prompt stream: a seeded shuffle per epoch.</summary>
    /// <param name="position">The position.</param>
    /// <returns>The prompt index.</returns>
    public int PromptAt(long position)
    {
        var n = definition.Train.Count;
        var epoch = (int)(position / n);
        if (_order is null || _orderEpoch != epoch)
        {
            var order = Enumerable.Range(0, n).ToArray();
            new Random(unchecked((int)(definition.Spec.Seed * 1_000_003) ^ (epoch * 7919))).Shuffle(order);
            (_order, _orderEpoch) = (order, epoch);
        }

        return _order[(int)(position % n)];
    }

    /// <summary>The sampling seed of a group (a SplitMix64 hash of the campaign seed and the group's place).</summary>
    /// <param name="step">The step.</param>
    /// <param name="round">The round.</param>
    /// <param name="slot">The slot.</param>
    /// <returns>The seed.</returns>
    public ulong GroupSeed(int step, int round, int slot)
    {
        var x = unchecked((ulong)definition.Spec.Seed + ((ulong)step << 24) + ((ulong)round << 16) + (ulong)slot + 0x9E3779B97F4A7C15UL);
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    private async Task<CampaignState> Transition(CampaignState to, CampaignState[] from, CancellationToken cancellationToken) =>
        await store.TransitionAsync(definition.Id, to, from, null, cancellationToken)
        ?? throw new InvalidOperationException($"campaign {definition.Id} does not exist");
}
