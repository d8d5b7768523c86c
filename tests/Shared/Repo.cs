// Compiled into the test projects that need the repository's paths (see their .csproj).
namespace Warden.Tests.Shared;

/// <summary>Paths in the repository; each project adds what it builds or writes (a partial class per project).</summary>
internal static partial class Repo
{
    private static readonly Lazy<string> RootDir = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Warden.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("no Warden.slnx above " + AppContext.BaseDirectory);
    });

    public static string Root => RootDir.Value;

    public static string WorkplaceDll => Existing(Path.Combine(Root, "artifacts", "workplace-server", "workplace-server.dll"));

    internal static string Existing(string path) => File.Exists(path) ? path : throw new FileNotFoundException("not built: " + path, path);
}
