namespace Warden.Tests.Shared;

/// <summary>What this project builds: the CLI it runs as a child process.</summary>
internal static partial class Repo
{
    /// <summary>The configuration the tests were built with (Debug or Release), read from the output path.</summary>
    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;

    public static string WardenDll => Existing(Path.Combine(Root, "src", "Warden.Cli", "bin", Configuration, "net10.0", "warden.dll"));
}
