namespace DeepSeekRL.Storage.Nodes;

/// <summary>A lease holder: a silo's name and the Orleans generation of its process (one per start).</summary>
/// <param name="NodeId">The silo's name (<c>--node-id</c>, default host-pid).</param>
/// <param name="Generation">The silo's Orleans generation; its membership row says whether that process is dead.</param>
public readonly record struct NodeIdentity(string NodeId, long Generation)
{
    /// <inheritdoc/>
    public override string ToString() => $"{NodeId}#{Generation}";
}
