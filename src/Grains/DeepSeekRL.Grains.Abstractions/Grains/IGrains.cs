namespace DeepSeekRL.Grains;

/// <summary>
/// A campaign's coordinator, keyed by the campaign id and hosted by silos with the learner role. While the campaign
/// is active it drives it: cuts steps into rollout work (rows), asks the learner to close complete steps, cuts and
/// gathers evaluations, and completes the campaign. Every decision is derived from PostgreSQL, so an activation that
/// comes back on another silo after a crash picks up where the last one stopped.
/// </summary>
public interface ICampaignGrain : IGrainWithIntegerKey
{
    /// <summary>Starts driving the campaign if it is active and not driven yet; the silos' keepers call it
    /// periodically, which is also how the grain comes back after the silo hosting it dies.</summary>
    /// <returns>The campaign's state.</returns>
    Task<CampaignState> EnsureRunningAsync();

    /// <summary>Stops cutting new steps; work already handed out finishes.</summary>
    /// <returns>The state after the call.</returns>
    Task<CampaignState> PauseAsync();

    /// <summary>Continues a paused campaign.</summary>
    /// <returns>The state after the call.</returns>
    Task<CampaignState> ResumeAsync();

    /// <summary>Stops the campaign for good and cancels its pending work.</summary>
    /// <returns>The state after the call.</returns>
    Task<CampaignState> CancelAsync();
}

/// <summary>
/// A campaign's learner, keyed by the campaign id and hosted by silos with the learner role. Orleans keeps one
/// activation most of the time, which is not a guarantee, so an activation first takes the campaign's learner lease
/// (a row with an epoch) and every write it makes is fenced by that epoch: a stale activation writes nothing.
/// </summary>
public interface ILearnerGrain : IGrainWithIntegerKey
{
    /// <summary>Takes the learner lease (from a holder that expired or whose silo is dead) and loads the last
    /// checkpoint or the initial policy.</summary>
    /// <returns>The next step to close and the current policy version.</returns>
    Task<LearnerPosition> OpenAsync();

    /// <summary>Whether a step's groups are complete (every rollout and reward item of it finished).</summary>
    /// <param name="step">The step.</param>
    /// <returns>How many usable groups the step has, or <see langword="null"/> while work is outstanding.</returns>
    Task<int?> StepGroupsAsync(int step);

    /// <summary>Closes a complete step: update (train mode), publish, metrics, checkpoint; all fenced.</summary>
    /// <param name="step">The step.</param>
    /// <returns>The result.</returns>
    [ResponseTimeout("01:00:00")]
    Task<LearnerStepResult> CloseStepAsync(int step);

    /// <summary>Records every evaluation whose chunks have all finished (fenced).</summary>
    /// <returns>How many evaluations are still outstanding.</returns>
    Task<int> RecordEvaluationsAsync();

    /// <summary>Writes the last checkpoint and records the campaign as completed (fenced).</summary>
    /// <returns>A task.</returns>
    [ResponseTimeout("00:10:00")]
    Task CompleteAsync();
}

/// <summary>
/// A rollout worker: a stateless worker grain (one per core of each silo with the rollout role, activated locally by
/// the silo's work pump) that samples G completions per prompt with per-token log-probs under the item's policy
/// version, or evaluates a chunk of the evaluation set, and completes the item's row with the results.
/// </summary>
public interface IRolloutWorkerGrain : IGrainWithIntegerKey
{
    /// <summary>Processes claimed rollout and evaluation items (rollouts of one policy version share forward passes).</summary>
    /// <param name="items">The items, leased to this silo.</param>
    /// <returns>Each item's outcome, in order.</returns>
    [ResponseTimeout("01:00:00")]
    Task<WorkOutcome[]> ProcessAsync(ClaimedWork[] items);
}

/// <summary>A reward worker: a stateless worker grain that scores a rollout item's completions with the campaign's
/// reward pipeline, applies the rejection-sampling filter and completes the reward item with scores and samples.</summary>
public interface IRewardWorkerGrain : IGrainWithIntegerKey
{
    /// <summary>Processes claimed reward items.</summary>
    /// <param name="items">The items, leased to this silo.</param>
    /// <returns>Each item's outcome, in order.</returns>
    [ResponseTimeout("00:30:00")]
    Task<WorkOutcome[]> ProcessAsync(ClaimedWork[] items);
}
