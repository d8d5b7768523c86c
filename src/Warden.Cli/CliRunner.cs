using System.CommandLine;
using Spectre.Console;

namespace Warden.Cli;

/// <summary>Runs the command line and turns expected failures into one clear line and an exit code.</summary>
internal static class CliRunner
{
    public static async Task<int> RunAsync(RootCommand root, string[] args)
    {
        try
        {
            // Piped output is read by programs: never wrap lines (a file:line:column diagnostic must stay on one line).
            if (Console.IsOutputRedirected)
            {
                AnsiConsole.Profile.Width = 4096;
            }

            var parsed = root.Parse(args);
            if (parsed.GetValue(CommonOptions.NoColor) || Environment.GetEnvironmentVariable("NO_COLOR") is not null)
            {
                AnsiConsole.Profile.Capabilities.Ansi = false;
                AnsiConsole.Profile.Capabilities.ColorSystem = ColorSystem.NoColors;
            }

            return await parsed.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false }).ConfigureAwait(false);
        }
        catch (CliException ex)
        {
            Console.Error.WriteLine("warden: " + ex.Message);
            return ex.ExitCode;
        }
    }
}

/// <summary>A failure the user can act on; printed without a stack trace.</summary>
internal sealed class CliException(string message, int exitCode = 1) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

/// <summary>Options several commands share.</summary>
internal static class CommonOptions
{
    public static readonly Option<bool> NoColor = new("--no-color") { Description = "Plain output without colours (also NO_COLOR)", Recursive = true };

    public static Option<string> Config() => new("--config", "-c")
    {
        Description = "Path to warden.yaml",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("WARDEN_CONFIG") ?? "warden.yaml",
    };

    public static Option<string?> Url() => new("--url")
    {
        Description = "The running gateway's base URL (default: WARDEN_URL, the saved credentials, or http://127.0.0.1:8470)",
    };

    public static Option<string?> Token() => new("--token")
    {
        Description = "Bearer token (default: WARDEN_TOKEN, or the credentials saved by 'warden init')",
    };

    public static Option<bool> Json() => new("--json") { Description = "Print JSON for programs instead of tables" };
}
