using Warden.Core.Policy;

namespace Warden.Gateway.Policy;

/// <summary>Reads policy files from disk: one file, or every <c>*.yaml</c>/<c>*.yml</c> in a folder in name order.</summary>
public static class PolicyFiles
{
    /// <summary>Reads the files of a policy path.</summary>
    public static IReadOnlyList<(string Path, string Text)> Read(string path)
    {
        if (File.Exists(path))
        {
            return [(path, File.ReadAllText(path))];
        }

        if (Directory.Exists(path))
        {
            return Directory.EnumerateFiles(path)
                .Where(f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
                .Where(f => !Path.GetFileName(f).Contains(".test.", StringComparison.OrdinalIgnoreCase) && !Path.GetFileName(f).StartsWith("tests", StringComparison.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal)
                .Select(f => (f, File.ReadAllText(f)))
                .ToList();
        }

        throw new FileNotFoundException($"policy path '{path}' does not exist");
    }

    /// <summary>Reads a list file relative to the policy file naming it.</summary>
    public static string? ReadListFile(string policyFile, string relative)
    {
        var full = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(policyFile)) ?? ".", relative));
        return File.Exists(full) ? File.ReadAllText(full) : null;
    }

    /// <summary>Reads and compiles a policy path.</summary>
    public static PolicyCompileResult Compile(string path, PolicyReferences? references = null)
    {
        IReadOnlyList<(string Path, string Text)> files;
        try
        {
            files = Read(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return new PolicyCompileResult(null, [new Core.Text.SourceDiagnostic(path, 1, 1, ex.Message)]);
        }

        return PolicyCompiler.Compile(files, ReadListFile, PolicyConditions.Factory, references);
    }
}
