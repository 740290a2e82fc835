namespace DeepSeekRL.Grains;

/// <summary>
/// A campaign's coordinator (a singleton per campaign, keyed by its id): lifecycle, cutting steps into rollout work,
/// evaluations, and its recorded state. Transport-free: a host calls it in-process today, an Orleans host could too.
/// </summary>
public interface ICampaignGrain
{
    /// <summary>The campaign id (the grain's key).</summary>
    long CampaignId { get; }

    /// <summary>Reads the campaign's status.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The status.</returns>
    Task<CampaignStatus> GetStatusAsync(CancellationToken cancellationToken);

    /// <summary>Moves a created or paused campaign to running.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state after the call.</returns>
    Task<CampaignState> StartAsync(CancellationToken cancellationToken);

    /// <summary>Stops cutting new steps; work already handed out finishes.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state after the call.</returns>
    Task<CampaignState> PauseAsync(CancellationToken cancellationToken);

    /// <summary>Continues a paused campaign.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state after the call.</returns>
    Task<CampaignState> ResumeAsync(CancellationToken cancellationToken);

    /// <summary>Stops the campaign for good and cancels its pending work.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state after the call.</returns>
    Task<CampaignState> CancelAsync(CancellationToken cancellationToken);

    /// <summary>Cuts a step (or a dynamic-sampling round of it) into rollout work items; idempotent.</summary>
    /// <param name="step">The step.</param>
    /// <param name="round">0, or the extra round.</param>
    /// <param name="groups">Groups (prompts) to ask for.</param>
    /// <param name="policyVersion">The policy version the rollouts use.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The rollout work cut.</returns>
    Task<IReadOnlyList<RolloutWork>> CutStepAsync(int step, int round, int groups, int policyVersion, CancellationToken cancellationToken);

    /// <summary>Enqueues the evaluation of a policy version after a step; idempotent.</summary>
    /// <param name="step">The step (-1 before any update).</param>
    /// <param name="policyVersion">The version to evaluate.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The chunks enqueued.</returns>
    Task<IReadOnlyList<EvaluationWork>> EvaluateAsync(int step, int policyVersion, CancellationToken cancellationToken);
}

/// <summary>A rollout worker (a stateless pool): samples G completions per prompt with per-token log-probs under the required policy version.</summary>
public interface IRolloutWorkerGrain
{
    /// <summary>Rolls out one item, holding (or first loading) its policy version.</summary>
    /// <param name="work">The work.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The completions and timings (the host writes them with the item's completion, in one transaction).</returns>
    Task<RolloutResult> RolloutAsync(RolloutWork work, CancellationToken cancellationToken);

    /// <summary>Evaluates one chunk of the evaluation set.</summary>
    /// <param name="work">The work.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The chunk's counts.</returns>
    Task<EvaluationChunkResult> EvaluateAsync(EvaluationWork work, CancellationToken cancellationToken);
}

/// <summary>A reward worker (a stateless pool): scores completions with the campaign's reward pipeline.</summary>
public interface IRewardGrain
{
    /// <summary>Scores one rollout item's completions (the host reads them and writes the scores with the item's completion).</summary>
    /// <param name="work">The work.</param>
    /// <param name="completions">The item's completions.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Each completion's scores.</returns>
    Task<RewardWorkResult> ScoreAsync(RewardWork work, IReadOnlyList<StoredCompletion> completions, CancellationToken cancellationToken);
}

/// <summary>
/// A campaign's learner (a fenced singleton per campaign): closes complete steps with advantages, dynamic sampling
/// and the policy update, publishes policy versions, writes step metrics and checkpoints, and resumes from its last
/// checkpoint after a restart.
/// </summary>
public interface ILearnerGrain
{
    /// <summary>The campaign id (the grain's key).</summary>
    long CampaignId { get; }

    /// <summary>Loads the last checkpoint (or the initial policy) and returns the next step to close.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The first step after the checkpoint.</returns>
    Task<int> ActivateAsync(CancellationToken cancellationToken);

    /// <summary>Whether a step's groups are complete (every rollout and reward item of it finished).</summary>
    /// <param name="step">The step.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many usable groups the step has, or <see langword="null"/> while work is outstanding.</returns>
    Task<int?> StepGroupsAsync(int step, CancellationToken cancellationToken);

    /// <summary>Closes a complete step: update (train mode), publish, metrics, checkpoint.</summary>
    /// <param name="step">The step.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The result.</returns>
    Task<LearnerStepResult> CloseStepAsync(int step, CancellationToken cancellationToken);
}

/// <summary>A campaign's dataset: applies the rejection-sampling filter, stores SFT samples with provenance, exports them.</summary>
public interface IDatasetGrain
{
    /// <summary>Applies the rejection-sampling filter to scored completions.</summary>
    /// <param name="completions">The completions.</param>
    /// <param name="scores">Their scores (same order).</param>
    /// <returns>The accepted ones as SFT samples with their verdicts; the host stores them with the reward item's completion.</returns>
    IReadOnlyList<AcceptedSample> Select(IReadOnlyList<StoredCompletion> completions, IReadOnlyList<CompletionScores> scores);

    /// <summary>Exports the accepted samples as chat-format JSONL.</summary>
    /// <param name="destination">Where to write.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The samples written.</returns>
    Task<long> ExportAsync(Stream destination, CancellationToken cancellationToken);
}
