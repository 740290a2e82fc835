namespace DeepSeekRL.Testing;

/// <summary>Paths of the checkout the tests run from.</summary>
public static class RepositoryPaths
{
    /// <summary>The repository root (the directory holding DeepSeekRL.sln).</summary>
    public static string Root { get; } = FindRoot();

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DeepSeekRL.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("DeepSeekRL.sln not found above " + AppContext.BaseDirectory);
    }
}
