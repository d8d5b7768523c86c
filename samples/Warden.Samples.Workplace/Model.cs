using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace Warden.Samples.Workplace;

public sealed class Mail
{
    public required string Id { get; init; }
    public required string Folder { get; set; }
    public required string From { get; init; }
    public required List<string> To { get; init; }
    public List<string> Cc { get; init; } = [];
    public required string Subject { get; init; }
    public required string Body { get; init; }
    public required DateTimeOffset Date { get; init; }
    public bool Read { get; set; }
}

public sealed class ForumPost
{
    public required string Id { get; init; }
    public required string Topic { get; init; }
    public required string Author { get; init; }
    public required string Text { get; init; }
    public required DateTimeOffset Time { get; init; }
}

public sealed class WorkDocument
{
    public required string Id { get; init; }
    public required string Title { get; init; }
    public required string Owner { get; init; }
    public required string Visibility { get; set; }
    public required bool Confidential { get; init; }
    public required string Content { get; init; }
}

/// <summary>What is stored on disk, one file per area so a mutation rewrites only its own file.</summary>
public sealed class WorkplaceData
{
    public List<Mail> Mail { get; set; } = [];
    public List<ForumPost> Forum { get; set; } = [];
    public List<WorkDocument> Documents { get; set; } = [];
    public Dictionary<string, List<JsonObject>> Records { get; set; } = [];
}

public static class WorkplaceJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // Readable quotes and non-ASCII in files and results; nothing here is embedded in HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Compact form for log lines and tool results: one JSON value per line.</summary>
    public static readonly JsonSerializerOptions Compact = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        // Readable quotes and non-ASCII in files and results; nothing here is embedded in HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
