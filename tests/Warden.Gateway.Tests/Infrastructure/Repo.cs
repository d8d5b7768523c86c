namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>Paths inside the repository: found by walking up from the test binaries to <c>Warden.slnx</c>.</summary>
internal static class Repo
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Warden.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Warden.slnx not found above {AppContext.BaseDirectory}");
    });

    public static string Root => RootPath.Value;

    /// <summary>Debug or Release: the configuration these tests were built in, which the CLI was built in too.</summary>
    public static string Configuration
    {
        get
        {
            var parts = AppContext.BaseDirectory.Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
            var bin = Array.LastIndexOf(parts, "bin");
            return bin >= 0 && bin + 1 < parts.Length ? parts[bin + 1] : "Debug";
        }
    }

    /// <summary>The sample workplace server (built by the project reference into artifacts/).</summary>
    public static string WorkplaceDll => Existing(Path.Combine(Root, "artifacts", "workplace-server", "workplace-server.dll"), "build the tests (the sample is a project reference)");

    /// <summary>The warden CLI (built by the project reference).</summary>
    public static string WardenDll => Existing(Path.Combine(Root, "src", "Warden.Cli", "bin", Configuration, "net10.0", "warden.dll"), "build the tests (the CLI is a project reference)");

    public static string NodeClientDir => Path.Combine(Root, "tests", "node-client");

    /// <summary>A file under tests/node-client/node_modules; fails clearly when <c>npm ci</c> has not been run.</summary>
    public static string NodeModule(string relative)
    {
        var path = Path.Combine(NodeClientDir, "node_modules", relative);
        if (!File.Exists(path))
        {
            throw new InvalidOperationException(
                $"{path} is missing: run 'npm ci' in {NodeClientDir} (the gateway tests use the npm MCP servers and the TypeScript SDK pinned there)");
        }

        return path;
    }

    public static string EverythingJs => NodeModule("@modelcontextprotocol/server-everything/dist/index.js");

    public static string FilesystemJs => NodeModule("@modelcontextprotocol/server-filesystem/dist/index.js");

    public static string WorkplacePolicy => Path.Combine(Root, "examples", "policies", "workplace", "policy.yaml");

    private static string Existing(string path, string hint) =>
        File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: {hint}", path);
}
