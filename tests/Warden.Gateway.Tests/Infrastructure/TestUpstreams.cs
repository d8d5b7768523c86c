using System.Text.Json;
using System.Text.Json.Nodes;

namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>YAML for the upstreams the tests run behind Warden, and helpers to read what they did.</summary>
internal static class TestUpstreams
{
    private static string Q(string s) => JsonSerializer.Serialize(s);

    private static string Command(params string[] parts) => "[" + string.Join(", ", parts.Select(Q)) + "]";

    /// <summary>The sample workplace server as a stdio child, on its own data folder.</summary>
    public static string Workplace(string name, string dataDir, string extra = "") =>
        $"  {name}:\n    command: {Command("dotnet", Repo.WorkplaceDll, "--data", dataDir)}\n" + Indent(extra);

    /// <summary>The npm server-everything as a stdio child.</summary>
    public static string Everything(string name = "everything", string extra = "") =>
        $"  {name}:\n    command: {Command("node", Repo.EverythingJs, "stdio")}\n" + Indent(extra);

    /// <summary>The npm server-filesystem as a stdio child, allowed one folder.</summary>
    public static string Filesystem(string name, string allowedDir) =>
        $"  {name}:\n    command: {Command("node", Repo.FilesystemJs, allowedDir)}\n";

    /// <summary>A Streamable HTTP upstream.</summary>
    public static string Http(string name, Uri url, string extra = "") =>
        $"  {name}:\n    url: {Q(url.ToString())}\n" + Indent(extra);

    private static string Indent(string extra) =>
        extra.Length == 0 ? "" : string.Join("", extra.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => "    " + l + "\n"));

    /// <summary>The workplace server's operations.log: one JSON object per tool call it handled.</summary>
    public static List<JsonObject> OperationsLog(string dataDir)
    {
        var path = Path.Combine(dataDir, "operations.log");
        if (!File.Exists(path))
        {
            return [];
        }

        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
    }

    public static List<string> LoggedTools(string dataDir) =>
        OperationsLog(dataDir).Select(o => o["tool"]!.GetValue<string>()).ToList();
}
