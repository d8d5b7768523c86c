using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Warden.Core.DataGuard;

/// <summary>A policy's own pattern: a regular expression (run with the linear-time engine) naming a finding kind.</summary>
/// <param name="Kind">The kind findings get.</param>
/// <param name="Pattern">The .NET regular expression.</param>
/// <param name="Label">The label a <c>label</c> action gives the agent (default: the kind).</param>
public sealed record CustomPattern(string Kind, string Pattern, string? Label = null);

/// <summary>A policy's keyword list: any of the words (case-insensitive, whole words) is a finding of the kind.</summary>
/// <param name="Kind">The kind findings get.</param>
/// <param name="Words">The words or phrases.</param>
/// <param name="Label">The label a <c>label</c> action gives the agent (default: the kind).</param>
public sealed record KeywordList(string Kind, IReadOnlyList<string> Words, string? Label = null);

/// <summary>Limits and extensions of a scanner.</summary>
public sealed class DataScannerOptions
{
    /// <summary>How many encodings deep to look (base64 inside hex inside URL encoding is 3).</summary>
    public int MaxDecodeDepth { get; init; } = 3;

    /// <summary>How deep JSON may nest before it is reported unscannable instead of walked.</summary>
    public int MaxJsonDepth { get; init; } = 64;

    /// <summary>How many characters of arguments are scanned; more is reported unscannable.</summary>
    public long MaxArgumentChars { get; init; } = 1 << 20;

    /// <summary>How many characters of one result are scanned; more is reported unscannable.</summary>
    public long MaxResultChars { get; init; } = 16 << 20;

    /// <summary>How many bytes gzip data found inside a scan may inflate to, in total (decompression bombs stop here).</summary>
    public long MaxInflateBytes { get; init; } = 1 << 20;

    /// <summary>Texts longer than this are scanned window by window (with overlap) instead of folded whole.</summary>
    public int WindowChars { get; init; } = 64 * 1024;

    /// <summary>Custom patterns.</summary>
    public IReadOnlyList<CustomPattern> Patterns { get; init; } = [];

    /// <summary>Keyword lists.</summary>
    public IReadOnlyList<KeywordList> Keywords { get; init; } = [];
}

/// <summary>The outcome of scanning a set of arguments or a result.</summary>
public sealed class ScanReport
{
    /// <summary>Every finding, deduplicated by kind and location.</summary>
    public List<Finding> Findings { get; } = [];

    /// <summary>True when part of the data was not scanned (a cap was hit); a finding of kind <c>unscannable</c> says where.</summary>
    public bool Incomplete { get; internal set; }
}

/// <summary>
/// Scans text and JSON for secrets, personal data, custom patterns and fingerprints of labelled data: folds the
/// text (see <see cref="TextNormalizer"/>), runs the detectors, decodes what looks encoded and scans that too,
/// nested up to a depth, and scans string fields joined so a value split across arguments is still seen.
/// Immutable and thread-safe once built; performs no I/O.
/// </summary>
public sealed class DataScanner
{
    private const int Overlap = 4096;
    private const int MaxFindings = 1000;
    private readonly DataScannerOptions _options;
    private readonly (CustomPattern Pattern, Regex Regex)[] _patterns;
    private readonly (KeywordList List, SearchValues<string> Words)[] _keywords;

    /// <summary>Builds a scanner. Throws <see cref="ArgumentException"/> for a pattern the regex engine rejects.</summary>
    public DataScanner(DataScannerOptions? options = null)
    {
        _options = options ?? new DataScannerOptions();
        _patterns = [.. _options.Patterns.Select(p => (p, new Regex(p.Pattern, RegexOptions.NonBacktracking | RegexOptions.CultureInvariant)))];
        _keywords = [.. _options.Keywords.Where(k => k.Words.Count > 0).Select(k => (k, SearchValues.Create([.. k.Words], StringComparison.OrdinalIgnoreCase)))];
    }

    /// <summary>The scanner's options.</summary>
    public DataScannerOptions Options => _options;

    /// <summary>The label a finding of a custom kind gives, or null for built-in kinds.</summary>
    public string? LabelOf(string kind) =>
        _patterns.FirstOrDefault(p => p.Pattern.Kind == kind).Pattern?.Label ?? _keywords.FirstOrDefault(k => k.List.Kind == kind).List?.Label;

    // ---- Arguments ---------------------------------------------------------------------------------

    /// <summary>Scans a call's arguments: every string and number by its path, and all of them joined.</summary>
    public ScanReport ScanArguments(IReadOnlyDictionary<string, JsonElement>? arguments, IReadOnlySet<ulong>? fingerprints = null)
    {
        var report = new ScanReport();
        if (arguments is null || arguments.Count == 0)
        {
            return report;
        }

        var state = new ScanState(report, fingerprints is null ? null : FingerprintSet.Create(fingerprints), _options.MaxArgumentChars, new DecodeBudget(_options.MaxInflateBytes));
        if (state.Fingerprints is { Count: > 0 } && !DisableDeferredFingerprints)
        {
            state.Deferred = [];
        }

        foreach (var (key, value) in arguments)
        {
            Walk(value, "$." + key, 1, state);
        }

        var joined = ScanJoined(state);
        ResolveFingerprints(state, joined);
        Finish(state);
        return report;
    }

    /// <summary>Scans a JSON value (a structured result) by path under a prefix.</summary>
    public ScanReport ScanJson(JsonElement value, string prefix, IReadOnlySet<ulong>? fingerprints = null)
    {
        var report = new ScanReport();
        var state = new ScanState(report, fingerprints is null ? null : FingerprintSet.Create(fingerprints), _options.MaxResultChars, new DecodeBudget(_options.MaxInflateBytes));
        Walk(value, prefix, 0, state);
        Finish(state);
        return report;
    }

    /// <summary>Scans one text (a result block). Long texts are scanned in windows, never copied whole.</summary>
    public ScanReport ScanText(string text, string location, IReadOnlySet<ulong>? fingerprints = null)
    {
        var report = new ScanReport();
        var state = new ScanState(report, fingerprints is null ? null : FingerprintSet.Create(fingerprints), _options.MaxResultChars, new DecodeBudget(_options.MaxInflateBytes));
        ScanField(text, location, state, collect: false);
        Finish(state);
        return report;
    }

    private void Finish(ScanState state)
    {
        if (state.Budget.Exhausted)
        {
            Unscannable(state, "(decoded data)", "compressed data inflates past the cap");
        }
    }

    private static void Unscannable(ScanState state, string location, string why)
    {
        state.Report.Incomplete = true;
        if (!state.Report.Findings.Exists(f => f.Kind == FindingKinds.Unscannable && f.Location == location))
        {
            state.Report.Findings.Add(new Finding(FindingKinds.Unscannable, FindingCategory.Limit, location, 1.0, why));
        }
    }

    private void Walk(JsonElement value, string path, int depth, ScanState state)
    {
        if (depth > _options.MaxJsonDepth)
        {
            Unscannable(state, path, $"nested deeper than {_options.MaxJsonDepth} levels");
            return;
        }

        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                ScanField(value.GetString() ?? "", path, state, collect: true);
                break;
            case JsonValueKind.Number:
                ScanField(value.GetRawText(), path, state, collect: true);
                break;
            case JsonValueKind.Object:
                foreach (var p in value.EnumerateObject())
                {
                    if (state.Remaining <= 0)
                    {
                        Unscannable(state, path, "arguments larger than the scan cap");
                        return;
                    }

                    Walk(p.Value, path + "." + p.Name, depth + 1, state);
                }

                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in value.EnumerateArray())
                {
                    if (state.Remaining <= 0)
                    {
                        Unscannable(state, path, "arguments larger than the scan cap");
                        return;
                    }

                    Walk(item, $"{path}[{i++}]", depth + 1, state);
                }

                break;
        }
    }

    /// <summary>Scans one value in the original text's coordinates.</summary>
    private void ScanField(string original, string location, ScanState state, bool collect)
    {
        if (state.Remaining < original.Length)
        {
            Unscannable(state, location, "larger than the scan cap");
            original = original[..(int)Math.Max(0, state.Remaining)];
        }

        state.Remaining -= original.Length;
        if (original.Length == 0)
        {
            return;
        }

        if (collect)
        {
            state.Fields.Add((location, original));
        }

        var window = _options.WindowChars;
        if (original.Length <= window + Overlap)
        {
            state.DeferThisField = collect && state.Deferred is not null && TextNormalizer.IsPlain(original);
            ScanWindow(original, 0, original.Length, location, state, state.Report.Findings);
            state.DeferThisField = false;
            return;
        }

        // A stream of windows: each is folded into a reused buffer; the overlap catches values across a seam.
        for (var start = 0; start < original.Length; start += window)
        {
            var end = Math.Min(original.Length, start + window + Overlap);
            ScanWindow(original, start, end, location, state, state.Report.Findings);
            if (end == original.Length)
            {
                break;
            }
        }
    }

    private void ScanWindow(string original, int from, int to, string location, ScanState state, List<Finding> into)
    {
        var slice = original.AsSpan(from, to - from);
        string text;
        List<int>? map = null;
        if (TextNormalizer.IsPlain(slice))
        {
            text = from == 0 && to == original.Length ? original : slice.ToString();
        }
        else
        {
            var sb = state.Builder;
            sb.Clear();
            map = state.Map;
            map.Clear();
            TextNormalizer.Fold(slice, sb, map);
            text = sb.ToString();
        }

        ScanLayer(text, 0, null, location, state, into, (s, l) =>
        {
            if (map is null)
            {
                return (from + s, l);
            }

            if (map.Count == 0)
            {
                return (from, 0);
            }

            var a = map[Math.Min(s, map.Count - 1)];
            var b = map[Math.Min(s + l - 1, map.Count - 1)] + 1;
            if (from + b < to && char.IsLowSurrogate(original[from + b]))
            {
                b++;
            }

            return (from + a, b - a);
        });
    }

    private void ScanLayer(string text, int depth, string? chain, string location, ScanState state, List<Finding> into, Func<int, int, (int Start, int Length)> toOriginal)
    {
        var raw = state.Matches;
        var mark = raw.Count;
        Detectors.Scan(text, raw);
        ScanCustom(text, raw);
        for (var k = mark; k < raw.Count; k++)
        {
            var m = raw[k];
            var (start, length) = toOriginal(m.Start, m.Length);
            Add(into, new Finding(m.Kind, FindingKinds.CategoryOf(m.Kind) ?? FindingCategory.Custom, location, depth == 0 ? m.Confidence : m.Confidence * 0.98, Finding.Mask(text.AsSpan(m.Start, m.Length)), chain)
            {
                Start = start,
                Length = length,
                Label = LabelOf(m.Kind),
            });
        }

        raw.RemoveRange(mark, raw.Count - mark);

        if (state.Fingerprints is { Count: > 0 } && depth == 0 && state.DeferThisField)
        {
            // A placeholder keeps the finding's place among the others (no kind: nothing compares equal to it).
            var (start, length) = toOriginal(0, text.Length);
            var placeholder = new Finding("", FindingCategory.Fingerprint, location, 0, "");
            into.Add(placeholder);
            state.Deferred!.Add(new DeferredMatch(text, location, placeholder, start, length));
        }
        else if (state.Fingerprints is { Count: > 0 } fp)
        {
            var match = Fingerprinter.Match(text, fp);
            if (depth == 0)
            {
                state.TopMatch = match;
            }

            if (Fingerprinter.IsFinding(match))
            {
                ResolvePending(state, location);
                var (start, length) = toOriginal(0, text.Length);
                Add(into, new Finding(FindingKinds.Fingerprint, FindingCategory.Fingerprint, location, Math.Min(0.99, 0.6 + 0.1 * (match.Tokens + match.Shingles)),
                    $"{match.Tokens} distinctive value(s), {match.Shingles} phrase(s) from labelled data", chain) { Start = start, Length = length });
            }
        }

        if (depth >= _options.MaxDecodeDepth)
        {
            return;
        }

        var segments = new List<DecodedSegment>();
        Decoding.Find(text, segments, state.Budget);
        foreach (var seg in segments)
        {
            var inner = TextNormalizer.Normalize(seg.Text);
            var (start, length) = toOriginal(seg.Start, seg.Length);
            ScanLayer(inner, depth + 1, chain is null ? seg.Encoding : chain + ">" + seg.Encoding, location, state, into, (_, _) => (start, length));
        }
    }

    private void ScanCustom(string text, List<RawMatch> into)
    {
        foreach (var (p, regex) in _patterns)
        {
            foreach (var m in regex.EnumerateMatches(text))
            {
                if (m.Length > 0)
                {
                    into.Add(new RawMatch(p.Kind, m.Index, m.Length, 0.9));
                }
            }
        }

        foreach (var (list, words) in _keywords)
        {
            var span = text.AsSpan();
            var offset = 0;
            while (offset < span.Length)
            {
                var k = span[offset..].IndexOfAny(words);
                if (k < 0)
                {
                    break;
                }

                var i = offset + k;
                var word = "";
                foreach (var w in list.Words)
                {
                    if (span[i..].StartsWith(w, StringComparison.OrdinalIgnoreCase) && w.Length > word.Length)
                    {
                        word = w;
                    }
                }

                var end = i + Math.Max(1, word.Length);
                var whole = (i == 0 || !char.IsAsciiLetterOrDigit(span[i - 1])) && (end >= span.Length || !char.IsAsciiLetterOrDigit(span[end]));
                if (whole)
                {
                    into.Add(new RawMatch(list.Kind, i, end - i, 0.9));
                }

                offset = whole ? end : i + 1;
            }
        }
    }

    private static void Add(List<Finding> into, Finding f)
    {
        if (into.Count >= MaxFindings)
        {
            return;
        }

        // One finding per kind, location and place: the same key seen plain and again inside a decoded copy is one.
        foreach (var e in into)
        {
            // The same value seen plain and again in a decoded copy of the whole text is one finding (the plain
            // one, which pins the value down for redaction).
            if (e.Kind == f.Kind && e.Location == f.Location && (e.Start == f.Start || (f.Encoding is not null && e.Masked == f.Masked)))
            {
                return;
            }
        }

        into.Add(f);
    }

    /// <summary>Turns the top-layer fingerprint match of deferred fields off, to compare against the plain way (tests).</summary>
    internal bool DisableDeferredFingerprints { get; init; }

    /// <summary>
    /// The fingerprint findings of fields whose match waited for the joined scan. A field alone matches what the joined
    /// text matches inside the field, plus what involves its first or last token (a neighbour can merge with those).
    /// When the joined text matched nothing (the usual case), only those edge matches are left to count; otherwise
    /// each field is matched whole, as it would have been at once. Findings go where they would have been.
    /// </summary>
    private static void ResolveFingerprints(ScanState state, (int Tokens, int Shingles)? joined)
    {
        if (state.Deferred is not { Count: > 0 } deferred)
        {
            return;
        }

        var edgesOnly = joined is (0, 0);
        foreach (var d in deferred)
        {
            Resolve(state, d, edgesOnly);
        }

        deferred.Clear();
    }

    /// <summary>
    /// Before another fingerprint finding is added at a location whose field match waits, the field is matched whole
    /// now, so that finding is compared against it exactly as if it had been there from the start.
    /// </summary>
    private static void ResolvePending(ScanState state, string location)
    {
        if (state.Deferred is { Count: > 0 } deferred && deferred.FindIndex(d => d.Location == location) is var i and >= 0)
        {
            Resolve(state, deferred[i], edgesOnly: false);
            deferred.RemoveAt(i);
        }
    }

    private static void Resolve(ScanState state, DeferredMatch d, bool edgesOnly)
    {
        var fp = state.Fingerprints!;
        var findings = state.Report.Findings;
        var at = findings.FindIndex(e => ReferenceEquals(e, d.Placeholder));
        findings.RemoveAt(at);
        var match = edgesOnly ? Fingerprinter.MatchEdges(d.Text, fp) : Fingerprinter.Match(d.Text, fp);
        if (!Fingerprinter.IsFinding(match))
        {
            return;
        }

        var f = new Finding(FindingKinds.Fingerprint, FindingCategory.Fingerprint, d.Location, Math.Min(0.99, 0.6 + 0.1 * (match.Tokens + match.Shingles)),
            $"{match.Tokens} distinctive value(s), {match.Shingles} phrase(s) from labelled data", null) { Start = d.Start, Length = d.Length };

        // Nothing at this location can have been compared against it yet (ResolvePending runs first), so Add's rule
        // applies against what came before.
        if (findings.FindIndex(0, at, e => e.Kind == f.Kind && e.Location == f.Location && e.Start == f.Start) < 0)
        {
            findings.Insert(at, f);
        }
    }

    /// <summary>Scans all string fields joined, keeping only findings that span two or more fields.</summary>
    /// <returns>The fingerprint match of the joined text when it was scanned plain and whole, else null.</returns>
    private (int Tokens, int Shingles)? ScanJoined(ScanState state)
    {
        var fields = state.Fields;
        if (fields.Count < 2)
        {
            return null;
        }

        var sb = new StringBuilder();
        var bounds = new List<int>(fields.Count);
        foreach (var (_, text) in fields)
        {
            sb.Append(text);
            bounds.Add(sb.Length);
        }

        var joined = sb.ToString();
        var found = new List<Finding>();
        var inner = new ScanState(new ScanReport(), state.Fingerprints, long.MaxValue, state.Budget);
        ScanWindow(joined, 0, joined.Length, "joined", inner, found);
        var top = joined.Length <= _options.WindowChars + Overlap && TextNormalizer.IsPlain(joined) ? inner.TopMatch : null;
        foreach (var f in found)
        {
            if (f.Start < 0)
            {
                continue;
            }

            // Which fields does it touch?
            var first = bounds.FindIndex(b => b > f.Start);
            var last = bounds.FindIndex(b => b >= f.Start + f.Length);
            if (first < 0 || last < 0)
            {
                continue;
            }

            if (first == last)
            {
                // Inside one field, yet the field alone did not show it: its context (an assignment's key) was in
                // another field. Reported at the field that holds the value, in that field's coordinates.
                var location = fields[first].Location;
                if (f.Kind == FindingKinds.Fingerprint)
                {
                    ResolvePending(state, location);
                }

                if (!state.Report.Findings.Exists(x => x.Kind == f.Kind && x.Location == location))
                {
                    var fieldStart = first == 0 ? 0 : bounds[first - 1];
                    Add(state.Report.Findings, f with { Location = location, Start = f.Start - fieldStart });
                }

                continue;
            }

            var paths = string.Join(",", fields.Skip(first).Take(last - first + 1).Select(x => x.Location));
            Add(state.Report.Findings, f with { Location = $"joined({paths})", Start = -1, Length = 0 });
        }

        return top;
    }

    private sealed class ScanState(ScanReport report, FingerprintSet? fingerprints, long remaining, DecodeBudget budget)
    {
        public ScanReport Report { get; } = report;

        public FingerprintSet? Fingerprints { get; } = fingerprints;

        public long Remaining { get; set; } = remaining;

        public DecodeBudget Budget { get; } = budget;

        public List<(string Location, string Text)> Fields { get; } = [];

        public List<RawMatch> Matches { get; } = [];

        public StringBuilder Builder { get; } = new();

        public List<int> Map { get; } = [];

        /// <summary>
        /// Arguments only: the top-layer fingerprint match of a plain, unwindowed field waits for the joined scan (see
        /// <see cref="ResolveFingerprints"/>); true while such a field is being scanned.
        /// </summary>
        public bool DeferThisField { get; set; }

        public List<DeferredMatch>? Deferred { get; set; }

        /// <summary>Set on the joined scan's state: the fingerprint match of the joined text's top layer.</summary>
        public (int Tokens, int Shingles)? TopMatch { get; set; }
    }

    /// <summary>A field whose fingerprint match waits: its text, where a finding goes, and its place in the findings.</summary>
    private sealed record DeferredMatch(string Text, string Location, Finding Placeholder, int Start, int Length);

    // ---- Redaction ---------------------------------------------------------------------------------

    /// <summary>
    /// Replaces each finding's text in a value with <c>[REDACTED:kind]</c>; a finding that cannot be pinned down
    /// (joined across fields, the whole value decoded) redacts the whole value.
    /// </summary>
    public static string Redact(string original, IEnumerable<Finding> findings)
    {
        var spans = new List<(int Start, int End, string Kind)>();
        foreach (var f in findings)
        {
            if (f.Start < 0 || f.Length <= 0 || f.Start + f.Length > original.Length || f.Category == FindingCategory.Fingerprint)
            {
                return $"[REDACTED:{f.Kind}]";
            }

            spans.Add((f.Start, f.Start + f.Length, f.Kind));
        }

        if (spans.Count == 0)
        {
            return original;
        }

        spans.Sort((a, b) => a.Start.CompareTo(b.Start));
        var sb = new StringBuilder(original.Length);
        var pos = 0;
        foreach (var (start, end, kind) in spans)
        {
            if (end <= pos)
            {
                continue;
            }

            sb.Append(original, pos, Math.Max(0, start - pos));
            sb.Append("[REDACTED:").Append(kind).Append(']');
            pos = Math.Max(pos, end);
        }

        sb.Append(original, pos, original.Length - pos);
        return sb.ToString();
    }
}
