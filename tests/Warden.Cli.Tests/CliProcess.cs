using System.Diagnostics;
using System.Text;

namespace Warden.Cli.Tests;

/// <summary>The output of one <c>warden</c> run.</summary>
internal sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>
    /// Stdout and stderr with every run of white space (line breaks included) made one space: the CLI's console
    /// library wraps long lines at 80 columns when output is redirected, eating the space at the wrap.
    /// </summary>
    public string Flat => System.Text.RegularExpressions.Regex.Replace(Stdout + " " + Stderr, @"\s+", " ");

    public override string ToString() => $"exit {ExitCode}{Environment.NewLine}{Stdout}{Environment.NewLine}{Stderr}";
}

/// <summary>Runs the real CLI (<c>dotnet warden.dll</c>, built next to the tests) as a child process.</summary>
internal static class CliProcess
{
    /// <summary>The repository root.</summary>
    public static string RepoRoot => Repo.Root;

    /// <summary>A path under the repository root.</summary>
    public static string InRepo(params string[] parts) => Path.Combine([RepoRoot, .. parts]);

    /// <summary>Runs <c>warden ARGS</c> in a working directory with colours off.</summary>
    public static async Task<CliResult> RunAsync(string workingDirectory, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "warden.dll");
        Assert.True(File.Exists(dll), "warden.dll is not next to the tests: " + dll);
        var psi = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["WARDEN_CONFIG"] = Path.Combine(workingDirectory, "no-such-warden.yaml");
        psi.Environment.Remove("WARDEN_URL");
        psi.Environment.Remove("WARDEN_TOKEN");

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("warden " + string.Join(' ', args) + " did not exit within 60s");
        }

        return new CliResult(process.ExitCode, await stdout, await stderr);
    }
}
