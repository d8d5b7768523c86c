using System.Text.Json;
using System.Text.Json.Serialization;
using Warden.Core.Audit;

namespace Warden.Gateway.Audit;

/// <summary>
/// An audit record as JSON: the API's answer and one line of a JSON Lines export. Field names are those of the
/// canonical encoding (docs/audit.md); hashes are hex. Converts back to the event losslessly, so an export verifies.
/// </summary>
public sealed record AuditRecordView
{
    [JsonPropertyName("seq")] public long Seq { get; init; }
    [JsonPropertyName("time")] public string Time { get; init; } = "";
    [JsonPropertyName("kind")] public string Kind { get; init; } = "";
    [JsonPropertyName("actor")] public string Actor { get; init; } = "";
    [JsonPropertyName("agent"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Agent { get; init; }
    [JsonPropertyName("session"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Session { get; init; }
    [JsonPropertyName("call"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Call { get; init; }
    [JsonPropertyName("server"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Server { get; init; }
    [JsonPropertyName("tool"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Tool { get; init; }
    [JsonPropertyName("effect"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Effect { get; init; }
    [JsonPropertyName("rule"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Rule { get; init; }
    [JsonPropertyName("policy"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Policy { get; init; }
    [JsonPropertyName("context"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Context { get; init; }
    [JsonPropertyName("args"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Args { get; init; }
    [JsonPropertyName("result"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Result { get; init; }
    [JsonPropertyName("outcome"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Outcome { get; init; }
    [JsonPropertyName("dur_us"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public long? DurUs { get; init; }
    [JsonPropertyName("detail"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Detail { get; init; }
    [JsonPropertyName("prev")] public string Prev { get; init; } = "";
    [JsonPropertyName("hash")] public string Hash { get; init; } = "";

    /// <summary>The view of an event.</summary>
    public static AuditRecordView From(AuditEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return new AuditRecordView
        {
            Seq = e.Seq, Time = AuditCanonical.FormatTime(e.Time), Kind = e.Kind, Actor = e.Actor, Agent = e.Agent, Session = e.Session, Call = e.Call,
            Server = e.Server, Tool = e.Tool, Effect = e.Effect, Rule = e.Rule, Policy = e.PolicyVersion, Context = e.Context, Args = e.Arguments,
            Result = e.ResultDigest, Outcome = e.Outcome, DurUs = e.DurationMicros, Detail = e.Detail,
            Prev = Convert.ToHexStringLower(e.PrevHash.Span), Hash = Convert.ToHexStringLower(e.Hash.Span),
        };
    }

    /// <summary>The event this view shows.</summary>
    public AuditEvent ToEvent() => new()
    {
        Seq = Seq,
        Time = AuditCanonical.ParseTime(Time),
        Kind = Kind, Actor = Actor, Agent = Agent, Session = Session, Call = Call, Server = Server, Tool = Tool, Effect = Effect, Rule = Rule,
        PolicyVersion = Policy, Context = Context, Arguments = Args, ResultDigest = Result, Outcome = Outcome, DurationMicros = DurUs, Detail = Detail,
        PrevHash = Convert.FromHexString(Prev), Hash = Convert.FromHexString(Hash),
    };
}

/// <summary>A page of audit records from <c>GET /api/v1/audit</c>.</summary>
/// <param name="Events">The records, oldest first.</param>
/// <param name="Head">The sequence number of the newest record in the log.</param>
public sealed record AuditPage(IReadOnlyList<AuditRecordView> Events, long Head);

/// <summary>The answer of <c>GET /api/v1/audit/verify</c>.</summary>
public sealed record AuditVerifyView(bool Ok, string Damage, long? BadSeq, string Message, long Verified, long LastSeq);

/// <summary>The trailer line of a JSON Lines export: the head at export time, so truncation of the file shows.</summary>
public sealed record AuditExportTrailer([property: JsonPropertyName("head_seq")] long HeadSeq, [property: JsonPropertyName("head_hash")] string HeadHash);

/// <summary>JSON for audit types.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(AuditRecordView))]
[JsonSerializable(typeof(AuditPage))]
[JsonSerializable(typeof(AuditVerifyView))]
[JsonSerializable(typeof(AuditExportTrailer))]
public sealed partial class AuditJsonContext : JsonSerializerContext;

/// <summary>Writes and reads JSON Lines exports: one record per line, then a trailer with the head.</summary>
public static class AuditExport
{
    /// <summary>Writes records, then (when given) the head trailer. Returns the number of records.</summary>
    public static long Write(IEnumerable<AuditEvent> events, TextWriter output, AuditHead? head)
    {
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(output);
        long n = 0;
        foreach (var e in events)
        {
            output.Write(JsonSerializer.Serialize(AuditRecordView.From(e), AuditJsonContext.Default.AuditRecordView));
            output.Write('\n');
            n++;
        }

        if (head is { } h)
        {
            output.Write(JsonSerializer.Serialize(new AuditExportTrailer(h.Seq, Convert.ToHexStringLower(h.Hash.Span)), AuditJsonContext.Default.AuditExportTrailer));
            output.Write('\n');
        }

        return n;
    }

    /// <summary>Reads an export: its records lazily, and its trailer (known once the records are read).</summary>
    public static IEnumerable<AuditEvent> Read(TextReader input, Action<AuditHead> trailer)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(trailer);
        var number = 0;
        while (input.ReadLine() is { } line)
        {
            number++;
            if (line.Length == 0)
            {
                continue;
            }

            if (line.StartsWith("{\"head_seq\"", StringComparison.Ordinal))
            {
                var t = JsonSerializer.Deserialize(line, AuditJsonContext.Default.AuditExportTrailer)!;
                trailer(new AuditHead(t.HeadSeq, Convert.FromHexString(t.HeadHash)));
                continue;
            }

            AuditRecordView view;
            try
            {
                view = JsonSerializer.Deserialize(line, AuditJsonContext.Default.AuditRecordView)
                    ?? throw new FormatException("null record");
            }
            catch (Exception ex) when (ex is JsonException or FormatException)
            {
                throw new FormatException($"line {number} is not an audit record: {ex.Message}", ex);
            }

            yield return view.ToEvent();
        }
    }
}
