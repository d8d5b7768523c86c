using System.Globalization;

namespace Warden.Samples.Workplace;

/// <summary>Command line and environment settings of the workplace server.</summary>
public sealed record WorkplaceOptions(string DataDirectory, TimeSpan MutationDelay, bool ShowHelp = false)
{
    public const string Usage = """
        workplace-server [--data DIR] [--slow-ms N]
          --data DIR     data directory (env WORKPLACE_DATA, default ./workplace-data); seeded on first start
          --slow-ms N    extra latency in milliseconds before every mutating tool applies its change
                         (env WORKPLACE_SLOW_MS, default 0)
        """;

    public static WorkplaceOptions Parse(IReadOnlyList<string> args, Func<string, string?> env)
    {
        string data = env("WORKPLACE_DATA") is { Length: > 0 } d ? d : "./workplace-data";
        int slowMs = env("WORKPLACE_SLOW_MS") is { Length: > 0 } s ? ParseMs(s) : 0;
        bool help = false;

        for (int i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--data" when i + 1 < args.Count:
                    data = args[++i];
                    break;
                case "--slow-ms" when i + 1 < args.Count:
                    slowMs = ParseMs(args[++i]);
                    break;
                case "-h" or "--help":
                    help = true;
                    break;
                default:
                    throw new ArgumentException($"Unknown or incomplete argument '{args[i]}'.\n{Usage}");
            }
        }

        return new WorkplaceOptions(Path.GetFullPath(data), TimeSpan.FromMilliseconds(slowMs), help);
    }

    private static int ParseMs(string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int ms) && ms >= 0
            ? ms
            : throw new ArgumentException($"--slow-ms expects a non-negative integer, got '{value}'.");
}
