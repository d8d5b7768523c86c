using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Warden.Core.Text;

/// <summary>
/// Reads YAML into the caller's model with strict checks: unknown fields, wrong types and bad values are
/// collected with line and column instead of being ignored, because a typo in a security policy must
/// never silently widen it.
/// </summary>
public sealed class YamlReader
{
    private readonly List<SourceDiagnostic> _diagnostics = [];

    /// <summary>Creates a reader for one file.</summary>
    public YamlReader(string file) => File = file;

    /// <summary>The file's path as given, for diagnostics.</summary>
    public string File { get; }

    /// <summary>Every problem found so far.</summary>
    public IReadOnlyList<SourceDiagnostic> Diagnostics => _diagnostics;

    /// <summary>True when an error (not a warning) was found.</summary>
    public bool HasErrors => _diagnostics.Exists(d => !d.IsWarning);

    /// <summary>Parses text; returns the root node, or null with a diagnostic when the YAML is malformed.</summary>
    public YamlNode? Parse(string text)
    {
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            if (stream.Documents.Count == 0)
            {
                Error(null, "the file is empty");
                return null;
            }

            return stream.Documents[0].RootNode;
        }
        catch (YamlException ex)
        {
            _diagnostics.Add(new SourceDiagnostic(File, (int)ex.Start.Line, (int)ex.Start.Column, "malformed YAML: " + Inner(ex).Message));
            return null;
        }
    }

    private static Exception Inner(Exception ex) => ex.InnerException is YamlException inner ? Inner(inner) : ex;

    /// <summary>Records an error at a node.</summary>
    public void Error(YamlNode? node, string message, string? hint = null) =>
        _diagnostics.Add(new SourceDiagnostic(File, Line(node), Column(node), message, hint));

    /// <summary>Records a warning at a node.</summary>
    public void Warning(YamlNode? node, string message, string? hint = null) =>
        _diagnostics.Add(new SourceDiagnostic(File, Line(node), Column(node), message, hint, IsWarning: true));

    /// <summary>1-based line of a node, or 1.</summary>
    public static int Line(YamlNode? node) => node is null ? 1 : (int)node.Start.Line;

    /// <summary>1-based column of a node, or 1.</summary>
    public static int Column(YamlNode? node) => node is null ? 1 : (int)node.Start.Column;

    /// <summary>Requires a mapping; reports unknown keys against <paramref name="known"/>.</summary>
    public YamlMappingNode? Mapping(YamlNode? node, string what, params string[] known)
    {
        if (node is null)
        {
            return null;
        }

        if (node is not YamlMappingNode map)
        {
            Error(node, $"{what} must be a mapping (key: value)");
            return null;
        }

        if (known.Length > 0)
        {
            foreach (var key in map.Children.Keys)
            {
                var name = (key as YamlScalarNode)?.Value ?? "";
                if (Array.IndexOf(known, name) < 0)
                {
                    var close = Closest(name, known);
                    Error(key, $"unknown field '{name}' in {what}", close is null ? $"known fields: {string.Join(", ", known)}" : $"did you mean '{close}'?");
                }
            }
        }

        return map;
    }

    /// <summary>The value under a key, or null.</summary>
    public static YamlNode? Get(YamlMappingNode? map, string key)
    {
        if (map is null)
        {
            return null;
        }

        foreach (var (k, v) in map.Children)
        {
            if (k is YamlScalarNode s && s.Value == key)
            {
                return v;
            }
        }

        return null;
    }

    /// <summary>A scalar as a string; null when absent or YAML null.</summary>
    public string? String(YamlNode? node, string what)
    {
        if (node is null)
        {
            return null;
        }

        if (node is YamlScalarNode s)
        {
            return IsNull(s) ? null : s.Value;
        }

        Error(node, $"{what} must be a single value");
        return null;
    }

    /// <summary>A scalar as a boolean.</summary>
    public bool? Bool(YamlNode? node, string what)
    {
        var s = String(node, what);
        if (s is null)
        {
            return null;
        }

        switch (s.ToLowerInvariant())
        {
            case "true" or "yes" or "on":
                return true;
            case "false" or "no" or "off":
                return false;
            default:
                Error(node, $"{what} must be true or false, not '{s}'");
                return null;
        }
    }

    /// <summary>A scalar as an integer.</summary>
    public long? Integer(YamlNode? node, string what)
    {
        var s = String(node, what);
        if (s is null)
        {
            return null;
        }

        if (long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
        {
            return v;
        }

        Error(node, $"{what} must be a whole number, not '{s}'");
        return null;
    }

    /// <summary>A duration such as <c>15m</c>, <c>30s</c>, <c>2h</c>, <c>500ms</c>, <c>1d</c>.</summary>
    public TimeSpan? Duration(YamlNode? node, string what)
    {
        var s = String(node, what);
        if (s is null)
        {
            return null;
        }

        if (TryParseDuration(s, out var d))
        {
            return d;
        }

        Error(node, $"{what} must be a duration such as 30s, 15m, 2h or 1d, not '{s}'");
        return null;
    }

    /// <summary>Parses <c>500ms</c>, <c>30s</c>, <c>15m</c>, <c>2h</c>, <c>1d</c>.</summary>
    public static bool TryParseDuration(string s, out TimeSpan value)
    {
        value = default;
        s = s.Trim();
        var unitStart = s.Length;
        while (unitStart > 0 && char.IsAsciiLetter(s[unitStart - 1]))
        {
            unitStart--;
        }

        if (unitStart == 0 || !double.TryParse(s.AsSpan(0, unitStart), NumberStyles.Float, CultureInfo.InvariantCulture, out var n) || n < 0)
        {
            return false;
        }

        var unit = s[unitStart..].ToLowerInvariant();
        double? ms = unit switch
        {
            "ms" => n,
            "s" or "" => n * 1000,
            "m" or "min" => n * 60_000,
            "h" => n * 3_600_000,
            "d" => n * 86_400_000,
            _ => null,
        };
        if (ms is null)
        {
            return false;
        }

        value = TimeSpan.FromMilliseconds(ms.Value);
        return true;
    }

    /// <summary>A list of strings; a single scalar counts as a list of one.</summary>
    public List<string> StringList(YamlNode? node, string what)
    {
        var list = new List<string>();
        switch (node)
        {
            case null:
                break;
            case YamlScalarNode s when IsNull(s):
                break;
            case YamlScalarNode s:
                list.Add(s.Value ?? "");
                break;
            case YamlSequenceNode seq:
                foreach (var item in seq.Children)
                {
                    if (item is YamlScalarNode si && !IsNull(si))
                    {
                        list.Add(si.Value ?? "");
                    }
                    else
                    {
                        Error(item, $"each item of {what} must be a single value");
                    }
                }

                break;
            default:
                Error(node, $"{what} must be a list");
                break;
        }

        return list;
    }

    /// <summary>A mapping of strings to strings.</summary>
    public Dictionary<string, string> StringMap(YamlNode? node, string what)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Mapping(node, what) is not { } map)
        {
            return result;
        }

        foreach (var (k, v) in map.Children)
        {
            var key = String(k, what + " key");
            var value = String(v, $"{what}.{key}");
            if (key is not null)
            {
                result[key] = value ?? "";
            }
        }

        return result;
    }

    private static bool IsNull(YamlScalarNode s) =>
        s.Style == ScalarStyle.Plain && (s.Value is null or "" or "~" or "null" or "Null" or "NULL");

    /// <summary>The closest known name within a small edit distance, for "did you mean" hints.</summary>
    public static string? Closest(string name, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        foreach (var k in known)
        {
            var d = Distance(name.ToLowerInvariant(), k.ToLowerInvariant());
            if (d < bestDistance)
            {
                bestDistance = d;
                best = k;
            }
        }

        return bestDistance <= Math.Max(2, name.Length / 3) ? best : null;
    }

    private static int Distance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            prev[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }
}
