using System.Text;
using System.Text.Json;
using Warden.Core.Pipeline;
using Warden.Core.Policy;

namespace Warden.Core.DataGuard;

/// <summary>
/// The data guard in the decision pipeline. Before policy it adds the labels the agent carries from earlier
/// reads to the call, so rules can hold or deny a labelled agent's outbound calls (<c>"confidential" in
/// context.session.labels</c>). After policy (as a filter) it scans the arguments: <c>block</c> denies with rule
/// <c>data-guard:KIND</c>, <c>ask</c> holds the call with that rule, <c>redact</c> rewrites the arguments to forward.
/// On the result path <see cref="BeginResult"/> scans what comes back, redacts, and labels the agent.
/// </summary>
public sealed class DataGuardStage(PolicyHolder holder, LabelTable labels) : IDecisionStage, IDecisionFilter
{
    /// <inheritdoc />
    public string Name => "data-guard";

    /// <summary>The label table the stage reads and the result path writes.</summary>
    public LabelTable Labels => labels;

    /// <inheritdoc />
    public Decision? Evaluate(CallContext call)
    {
        var carried = labels.LabelsOf(call.Agent.Name, call.SessionId, call.ReceivedAt);
        if (carried.Count > 0)
        {
            call.SessionLabels = call.SessionLabels.Count == 0 ? carried : [.. call.SessionLabels.Union(carried, StringComparer.Ordinal)];
        }

        return null;
    }

    /// <inheritdoc />
    public Decision Filter(CallContext call, Decision decision)
    {
        if (decision.Effect == Effect.Deny || holder.Current?.DataGuard is not { } guard)
        {
            return decision;
        }

        return Apply(guard, call, decision, labels.FingerprintsOf(call.Agent.Name, call.SessionId, call.ReceivedAt));
    }

    /// <summary>Scans a call's arguments under a data-guard policy and returns the decision it leads to (used by explain too).</summary>
    public static Decision Apply(DataGuardPolicy guard, CallContext call, Decision decision, IReadOnlySet<ulong>? fingerprints)
    {
        var report = guard.Scanner.ScanArguments(call.Arguments, fingerprints);
        call.Findings = report.Findings;
        if (report.Findings.Count == 0)
        {
            return decision;
        }

        Finding? block = null, ask = null;
        List<Finding>? redact = null;
        foreach (var f in report.Findings)
        {
            var action = guard.ActionFor(f, GuardDirection.Arguments);
            if ((action & GuardAction.Block) != 0)
            {
                block ??= f;
            }
            else if ((action & GuardAction.Ask) != 0)
            {
                ask ??= f;
            }
            else if ((action & GuardAction.Redact) != 0)
            {
                (redact ??= []).Add(f);
            }
        }

        if (block is not null)
        {
            return new Decision(Effect.Deny, "data-guard:" + block.Kind, Why(block, "blocks"), decision.PolicyVersion);
        }

        if (redact is not null && call.Arguments is { } args)
        {
            call.ForwardArguments = RedactArguments(args, redact);
        }

        if (ask is not null && decision.Effect < Effect.Ask)
        {
            return new Decision(Effect.Ask, "data-guard:" + ask.Kind, Why(ask, "asks a human about"), decision.PolicyVersion);
        }

        return decision;
    }

    private static string Why(Finding f, string verb) =>
        f.Category == FindingCategory.Fingerprint
            ? $"{f.Location} repeats data from a labelled source ({f.Masked}); the data guard {verb} it"
            : f.Category == FindingCategory.Limit
                ? $"{f.Location} could not be scanned ({f.Masked}); the data guard {verb} what it cannot read"
                : $"{f.Location} carries {Article(f.Kind)} {f.Kind}{(f.Encoding is null ? "" : $" ({f.Encoding}-encoded)")}: {f.Masked}; the data guard {verb} {Finding.CategoryName(f.Category)} data in arguments";

    private static string Article(string kind) => kind.Length > 0 && "aeiou".Contains(kind[0], StringComparison.Ordinal) ? "an" : "a";

    // ---- Redaction of arguments --------------------------------------------------------------------

    /// <summary>Rewrites arguments with each finding's value replaced; a field a joined finding touches is replaced whole.</summary>
    public static IReadOnlyDictionary<string, JsonElement> RedactArguments(IReadOnlyDictionary<string, JsonElement> args, IReadOnlyList<Finding> findings)
    {
        var byPath = new Dictionary<string, List<Finding>>(StringComparer.Ordinal);
        foreach (var f in findings)
        {
            if (f.Location.StartsWith("joined(", StringComparison.Ordinal))
            {
                foreach (var path in f.Location[7..^1].Split(','))
                {
                    Add(path, f with { Start = -1 });
                }
            }
            else
            {
                Add(f.Location, f);
            }
        }

        var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var (key, value) in args)
        {
            result[key] = RedactElement(value, "$." + key, byPath);
        }

        return result;

        void Add(string path, Finding f)
        {
            if (!byPath.TryGetValue(path, out var list))
            {
                byPath[path] = list = [];
            }

            list.Add(f);
        }
    }

    private static JsonElement RedactElement(JsonElement value, string path, Dictionary<string, List<Finding>> byPath)
    {
        if (!byPath.Keys.Any(p => p == path || p.StartsWith(path + ".", StringComparison.Ordinal) || p.StartsWith(path + "[", StringComparison.Ordinal)))
        {
            return value;
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            Write(w, value, path, byPath);
        }

        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    private static void Write(Utf8JsonWriter w, JsonElement value, string path, Dictionary<string, List<Finding>> byPath)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String or JsonValueKind.Number when byPath.TryGetValue(path, out var fs):
                var text = value.ValueKind == JsonValueKind.String ? value.GetString() ?? "" : value.GetRawText();
                w.WriteStringValue(DataScanner.Redact(text, fs));
                break;
            case JsonValueKind.Object:
                w.WriteStartObject();
                foreach (var p in value.EnumerateObject())
                {
                    w.WritePropertyName(p.Name);
                    Write(w, p.Value, path + "." + p.Name, byPath);
                }

                w.WriteEndObject();
                break;
            case JsonValueKind.Array:
                w.WriteStartArray();
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    Write(w, item, $"{path}[{i++}]", byPath);
                }

                w.WriteEndArray();
                break;
            default:
                value.WriteTo(w);
                break;
        }
    }

    // ---- Results -----------------------------------------------------------------------------------

    /// <summary>Starts scanning a result of a forwarded call; null when the policy has no data guard.</summary>
    public ResultScan? BeginResult(CallContext call, DateTimeOffset now) =>
        holder.Current?.DataGuard is { } guard ? new ResultScan(guard, labels, call, now) : null;
}

/// <summary>
/// The scan of one result, block by block: each text is scanned (in windows when long) and redacted as policy
/// says; <see cref="Commit"/> then labels the agent and fingerprints the result when it was labelled data.
/// </summary>
public sealed class ResultScan
{
    private readonly DataGuardPolicy _guard;
    private readonly LabelTable _labels;
    private readonly CallContext _call;
    private readonly DateTimeOffset _now;
    private readonly List<string> _texts = [];
    private readonly HashSet<string> _newLabels = new(StringComparer.Ordinal);

    internal ResultScan(DataGuardPolicy guard, LabelTable labels, CallContext call, DateTimeOffset now)
    {
        _guard = guard;
        _labels = labels;
        _call = call;
        _now = now;
        foreach (var l in guard.SourceLabelsFor(call.Operation, call.Server, call.Target))
        {
            _newLabels.Add(l);
        }
    }

    /// <summary>Every finding so far.</summary>
    public List<Finding> Findings { get; } = [];

    /// <summary>True when a finding's action is block: the result must not reach the agent.</summary>
    public bool Withhold { get; private set; }

    /// <summary>The finding that withheld the result.</summary>
    public Finding? WithheldBecause { get; private set; }

    /// <summary>Labels the result gives the agent (from sources and label actions).</summary>
    public IReadOnlyCollection<string> NewLabels => _newLabels;

    /// <summary>Scans one text block and returns it, redacted where policy says.</summary>
    public string Text(string location, string text)
    {
        _texts.Add(text);
        var report = _guard.Scanner.ScanText(text, location);
        return Apply(report, text);
    }

    /// <summary>Scans structured JSON content; returns it redacted (a new element) or the original.</summary>
    public JsonElement Json(string location, JsonElement value)
    {
        _texts.Add(value.GetRawText());
        var report = _guard.Scanner.ScanJson(value, location);
        List<Finding>? redact = null;
        foreach (var f in report.Findings)
        {
            if ((Act(f) & GuardAction.Redact) != 0)
            {
                (redact ??= []).Add(f);
            }
        }

        if (redact is null || value.ValueKind != JsonValueKind.Object)
        {
            return value;
        }

        var args = value.EnumerateObject().ToDictionary(p => p.Name, p => p.Value, StringComparer.Ordinal);
        var prefixed = redact.Select(f => f with { Location = "$" + f.Location[location.Length..] }).ToList();
        var redacted = DataGuardStage.RedactArguments(args, prefixed);
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (k, v) in redacted)
            {
                w.WritePropertyName(k);
                v.WriteTo(w);
            }

            w.WriteEndObject();
        }

        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    private GuardAction Act(Finding f)
    {
        Findings.Add(f);
        var action = _guard.ActionFor(f, GuardDirection.Results);
        if ((action & GuardAction.Label) != 0)
        {
            _newLabels.Add(f.Label ?? (f.Category == FindingCategory.Custom ? f.Kind : Finding.CategoryName(f.Category)));
        }

        if ((action & GuardAction.Block) != 0 && !Withhold)
        {
            Withhold = true;
            WithheldBecause = f;
        }

        return action;
    }

    private string Apply(ScanReport report, string text)
    {
        List<Finding>? redact = null;
        foreach (var f in report.Findings)
        {
            if ((Act(f) & GuardAction.Redact) != 0)
            {
                (redact ??= []).Add(f);
            }
        }

        return redact is null ? text : DataScanner.Redact(text, redact);
    }

    /// <summary>
    /// Labels the agent and fingerprints the result's texts when the result carried labelled data, in memory at once;
    /// returns what was given (for the gateway to make durable), or null when the result gave nothing.
    /// </summary>
    public DataLabelRecord? Commit()
    {
        _call.ResultFindings = Findings;
        if (_newLabels.Count == 0)
        {
            return null;
        }

        var settings = _guard.Settings;
        var hashes = new HashSet<ulong>();
        foreach (var t in _texts)
        {
            // Folded once for fingerprinting; plain ASCII text is used as it is.
            var folded = TextNormalizer.Normalize(Decoding.Unescape(t) ?? t);
            Fingerprinter.Add(folded, hashes, LabelTable.MaxFingerprints);
        }

        var record = new DataLabelRecord(
            DataLabelRecord.NewId(), _call.Agent.Name, settings.PerSessionLabels ? _call.SessionId : null,
            [.. _newLabels.Order(StringComparer.Ordinal)], [.. hashes], _now, _now + settings.LabelTtl);
        _labels.Apply(record);
        return record;
    }
}
