using System.Text.Json;
using System.Text.Json.Nodes;
using ModelContextProtocol;

namespace Warden.Samples.Workplace;

/// <summary>
/// The workplace's state, held in memory and written through to JSON files. One gate serializes every
/// access, which keeps concurrent tool calls (many deleters at once) from interleaving half-applied changes.
/// </summary>
public sealed class WorkplaceStore
{
    public const string MailFile = "mail.json";
    public const string ForumFile = "forum.json";
    public const string DocumentsFile = "documents.json";
    public const string RecordsFile = "records.json";

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly WorkplaceData _data;
    private int _nextMail;
    private int _nextPost;

    private WorkplaceStore(string directory, WorkplaceData data)
    {
        Directory = directory;
        _data = data;
        _nextMail = NextNumber(data.Mail.Select(m => m.Id));
        _nextPost = NextNumber(data.Forum.Select(p => p.Id));
    }

    public string Directory { get; }

    /// <summary>Loads the data directory, seeding any missing file with the deterministic demo data.</summary>
    public static WorkplaceStore Open(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        var seed = new Lazy<WorkplaceData>(Seed.Create);
        var data = new WorkplaceData
        {
            Mail = LoadOrSeed(directory, MailFile, () => seed.Value.Mail),
            Forum = LoadOrSeed(directory, ForumFile, () => seed.Value.Forum),
            Documents = LoadOrSeed(directory, DocumentsFile, () => seed.Value.Documents),
            Records = LoadOrSeed(directory, RecordsFile, () => seed.Value.Records),
        };
        return new WorkplaceStore(directory, data);
    }

    public Task<JsonNode> ListMailAsync(string folder, int limit, CancellationToken ct) => ReadAsync(() =>
    {
        var inFolder = _data.Mail.Where(m => folder == "all" || m.Folder == folder).OrderByDescending(m => m.Date).ToList();
        return (JsonNode)new JsonObject
        {
            ["folder"] = folder,
            ["total"] = inFolder.Count,
            ["mails"] = new JsonArray(inFolder.Take(limit).Select(m => (JsonNode)new JsonObject
            {
                ["id"] = m.Id,
                ["from"] = m.From,
                ["subject"] = m.Subject,
                ["date"] = m.Date,
                ["read"] = m.Read,
            }).ToArray()),
        };
    }, ct);

    public Task<JsonNode> ReadMailAsync(string id, CancellationToken ct) => ReadAsync(
        () => ToNode(_data.Mail.FirstOrDefault(m => m.Id == id) ?? throw NotFound("mail", id)), ct);

    public Task<JsonNode> DeleteMailAsync(IReadOnlyCollection<string> ids, CancellationToken ct) => WriteAsync(() =>
    {
        var wanted = ids.ToHashSet(StringComparer.Ordinal);
        var deleted = _data.Mail.Where(m => wanted.Contains(m.Id)).Select(m => m.Id).ToList();
        _data.Mail.RemoveAll(m => wanted.Contains(m.Id));
        Persist(MailFile, _data.Mail);
        return (JsonNode)new JsonObject
        {
            ["deleted"] = new JsonArray(deleted.Select(id => (JsonNode)id).ToArray()),
            ["notFound"] = new JsonArray(wanted.Except(deleted).Order(StringComparer.Ordinal).Select(id => (JsonNode)id).ToArray()),
            ["remaining"] = _data.Mail.Count,
        };
    }, ct);

    public Task<JsonNode> SendMailAsync(IReadOnlyList<string> to, IReadOnlyList<string> cc, string subject, string body, CancellationToken ct) =>
        WriteAsync(() =>
        {
            var mail = new Mail
            {
                Id = Seed.MailId(++_nextMail),
                Folder = "sent",
                From = "you@example.com",
                To = [.. to],
                Cc = [.. cc],
                Subject = subject,
                Body = body,
                Date = DateTimeOffset.UtcNow,
                Read = true,
            };
            _data.Mail.Add(mail);
            Persist(MailFile, _data.Mail);
            return (JsonNode)new JsonObject { ["sent"] = true, ["id"] = mail.Id, ["recipients"] = to.Count + cc.Count };
        }, ct);

    public Task<JsonNode> ListPostsAsync(string? topic, CancellationToken ct) => ReadAsync(
        () => (JsonNode)new JsonObject
        {
            ["posts"] = ToNode(_data.Forum.Where(p => topic is null || p.Topic == topic).OrderBy(p => p.Time).ToList()),
        }, ct);

    public Task<JsonNode> PostMessageAsync(string topic, string text, CancellationToken ct) => WriteAsync(() =>
    {
        var post = new ForumPost
        {
            Id = $"post-{++_nextPost}", Topic = topic, Author = "assistant", Text = text, Time = DateTimeOffset.UtcNow,
        };
        _data.Forum.Add(post);
        Persist(ForumFile, _data.Forum);
        return (JsonNode)new JsonObject { ["posted"] = true, ["id"] = post.Id, ["topic"] = topic };
    }, ct);

    public Task<JsonNode> ListDocumentsAsync(CancellationToken ct) => ReadAsync(
        () => (JsonNode)new JsonObject
        {
            ["documents"] = new JsonArray(_data.Documents.Select(d => (JsonNode)new JsonObject
            {
                ["id"] = d.Id, ["title"] = d.Title, ["owner"] = d.Owner, ["visibility"] = d.Visibility, ["confidential"] = d.Confidential,
            }).ToArray()),
        }, ct);

    public Task<JsonNode> ReadDocumentAsync(string id, CancellationToken ct) => ReadAsync(
        () => ToNode(_data.Documents.FirstOrDefault(d => d.Id == id) ?? throw NotFound("document", id)), ct);

    public Task<JsonNode> ShareDocumentAsync(string id, string visibility, CancellationToken ct) => WriteAsync(() =>
    {
        var doc = _data.Documents.FirstOrDefault(d => d.Id == id) ?? throw NotFound("document", id);
        string previous = doc.Visibility;
        doc.Visibility = visibility;
        Persist(DocumentsFile, _data.Documents);
        return (JsonNode)new JsonObject
        {
            ["id"] = id, ["visibility"] = visibility, ["previous"] = previous, ["confidential"] = doc.Confidential,
        };
    }, ct);

    public Task<JsonNode> QueryRecordsAsync(string table, IReadOnlyDictionary<string, string>? filter, CancellationToken ct) => ReadAsync(() =>
    {
        var rows = Table(table).Where(r => filter is null || filter.All(f =>
            r[f.Key] is JsonNode v && (v.GetValueKind() == JsonValueKind.String ? v.GetValue<string>() : v.ToJsonString()) == f.Value));
        return (JsonNode)new JsonObject
        {
            ["table"] = table,
            ["records"] = new JsonArray(rows.Select(r => r.DeepClone()).ToArray()),
        };
    }, ct);

    public Task<JsonNode> UpdateRecordAsync(string table, string id, IReadOnlyDictionary<string, JsonElement> fields, CancellationToken ct) =>
        WriteAsync(() =>
        {
            var record = Table(table).FirstOrDefault(r => (string?)r["id"] == id) ?? throw NotFound($"record in '{table}'", id);
            if (fields.ContainsKey("id"))
            {
                throw new WorkplaceException("The 'id' field cannot be changed.");
            }

            foreach (var (name, value) in fields)
            {
                record[name] = JsonSerializer.SerializeToNode(value);
            }

            Persist(RecordsFile, _data.Records);
            return record.DeepClone();
        }, ct);

    private List<JsonObject> Table(string table) =>
        _data.Records.TryGetValue(table, out var rows)
            ? rows
            : throw new WorkplaceException($"Unknown table '{table}'. Tables: {string.Join(", ", _data.Records.Keys)}.");

    private async Task<JsonNode> ReadAsync(Func<JsonNode> read, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            return read();
        }
        finally
        {
            _gate.Release();
        }
    }

    // Same gate as reads: the cost is negligible at this size and a reader never sees a half-applied change.
    private Task<JsonNode> WriteAsync(Func<JsonNode> write, CancellationToken ct) => ReadAsync(write, ct);

    /// <summary>Writes a sibling temp file, forces it to disk, then renames it over the target (atomic on POSIX).</summary>
    private void Persist<T>(string file, T value)
    {
        string path = Path.Combine(Directory, file);
        string temp = $"{path}.{Environment.ProcessId}.tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(stream, value, WorkplaceJson.Options);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: true);
    }

    private static T LoadOrSeed<T>(string directory, string file, Func<T> seed)
    {
        string path = Path.Combine(directory, file);
        if (File.Exists(path))
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize<T>(stream, WorkplaceJson.Options)
                ?? throw new InvalidDataException($"{path} holds JSON null.");
        }

        T value = seed();
        string temp = path + ".seed.tmp";
        File.WriteAllText(temp, JsonSerializer.Serialize(value, WorkplaceJson.Options));
        File.Move(temp, path, overwrite: true);
        return value;
    }

    private static int NextNumber(IEnumerable<string> ids) =>
        ids.Select(id => int.TryParse(id.AsSpan(id.LastIndexOf('-') + 1), out int n) ? n : 0).DefaultIfEmpty(0).Max();

    private static JsonNode ToNode<T>(T value) => JsonSerializer.SerializeToNode(value, WorkplaceJson.Compact)!;

    private static WorkplaceException NotFound(string what, string id) => new($"No {what} with id '{id}'.");
}

/// <summary>
/// A failure the caller caused (unknown id, bad argument). Deriving from <see cref="McpException"/> makes the SDK
/// put the message into the tool's error result, so the agent learns what was wrong.
/// </summary>
public sealed class WorkplaceException : McpException
{
    public WorkplaceException() { }
    public WorkplaceException(string message) : base(message) { }
    public WorkplaceException(string message, Exception inner) : base(message, inner) { }
}
